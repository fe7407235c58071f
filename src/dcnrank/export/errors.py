"""`ExportError`: a model that exported, but whose exported file does not compute what the
eager model computes."""

from __future__ import annotations


class ExportError(ValueError):
    """The exported file failed its check against the eager model; the message says by how much."""
