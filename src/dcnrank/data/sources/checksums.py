"""Where MovieLens 100K comes from, and the SHA-256 sums that prove a copy is the original."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from dcnrank.data.sources.errors import ChecksumMismatchError

__all__ = [
    "MOVIELENS_100K_SHA256",
    "MOVIELENS_100K_URL",
    "sha256_file",
    "verify_checksums",
]

MOVIELENS_100K_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"

# Computed once from the original GroupLens files (ml-100k.zip, the 1998 release).
MOVIELENS_100K_SHA256: Mapping[str, str] = {
    "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
    "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
}


def sha256_file(path: str | Path) -> str:
    """Return the hex SHA-256 digest of a file, read in 1 MiB chunks.

    Args:
        path: the file to hash.

    Returns:
        The 64-character lowercase hex digest.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksums(
    folder: str | Path, expected_sha256: Mapping[str, str] = MOVIELENS_100K_SHA256
) -> None:
    """Check that every file named in ``expected_sha256`` exists in ``folder`` with that sum.

    Args:
        folder: the folder holding the files.
        expected_sha256: file name -> expected hex SHA-256 (default: the real MovieLens 100K).

    Raises:
        ChecksumMismatchError: if a file is missing or its sum differs; the message names the
            file and gives the expected and actual sums.
    """
    folder = Path(folder)
    for name, expected in expected_sha256.items():
        path = folder / name
        if not path.is_file():
            raise ChecksumMismatchError(f"{path}: file is missing, expected SHA-256 {expected}")
        actual = sha256_file(path)
        if actual != expected.lower():
            raise ChecksumMismatchError(
                f"{path}: SHA-256 mismatch: expected {expected}, got {actual}"
            )
