"""Exceptions raised by the data layer when MovieLens data is missing, malformed or corrupt."""

from __future__ import annotations

__all__ = [
    "ChecksumMismatchError",
    "MovieLensDownloadError",
    "MovieLensFormatError",
    "MovieLensNotFoundError",
]


class MovieLensNotFoundError(FileNotFoundError):
    """The MovieLens 100K files are in none of the places dcnrank looks, and none could be fetched.

    The message lists every way to provide the data.
    """


class MovieLensFormatError(ValueError):
    """A MovieLens file breaks the format; the message starts with ``"{path}:{line}: "``."""


class MovieLensDownloadError(OSError):
    """Fetching or unpacking the MovieLens archive failed; the message names the URL or file."""


class ChecksumMismatchError(MovieLensDownloadError):
    """An extracted file's SHA-256 differs from the expected one; the message gives both sums."""
