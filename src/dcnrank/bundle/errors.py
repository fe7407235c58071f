"""`BundleError`: a bundle folder that cannot be saved or loaded as it is."""

from __future__ import annotations


class BundleError(ValueError):
    """A bundle is missing, incomplete, corrupt, of another format version, or does not
    match its own config; the message names the folder or file and what is wrong."""
