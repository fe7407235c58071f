"""Download and install the MovieLens 100K archive into the user cache, atomically and verified.

The archive is fetched to a temporary file inside the cache folder, extracted into a
temporary folder there, checked against SHA-256 sums and only then renamed to
``<cache>/ml-100k``. Whatever goes wrong (HTTP error, truncated or corrupt zip, checksum
mismatch, Ctrl-C), the temporaries are removed and the cache is left as it was.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from dcnrank.atomic import replace_folder
from dcnrank.data.sources.checksums import MOVIELENS_100K_SHA256, MOVIELENS_100K_URL, verify_checksums
from dcnrank.data.sources.errors import ChecksumMismatchError, MovieLensDownloadError

__all__ = ["default_cache_dir", "download_movielens", "install_movielens_zip"]

logger = logging.getLogger(__name__)

_FOLDER_NAME = "ml-100k"
_CHUNK_BYTES = 1 << 16


def default_cache_dir() -> Path:
    """Return dcnrank's cache folder: ``$XDG_CACHE_HOME/dcnrank``, else ``~/.cache/dcnrank``.

    Returns:
        The folder (it may not exist yet).
    """
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says relative values are invalid and must be ignored.
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "dcnrank"


def download_movielens(
    cache_dir: str | Path | None = None,
    *,
    url: str = MOVIELENS_100K_URL,
    expected_sha256: Mapping[str, str] | None = None,
    progress: bool = False,
    timeout: float = 60.0,
) -> Path:
    """Download the MovieLens 100K zip and install it as ``<cache_dir>/ml-100k``.

    Args:
        cache_dir: the cache folder (default: :func:`default_cache_dir`); created if missing.
        url: where to fetch the zip from (default: GroupLens).
        expected_sha256: file name -> hex SHA-256 that the extracted files must have
            (default: the sums of the original ``u.data``, ``u.user``, ``u.item``).
        progress: show a tqdm progress bar on stderr.
        timeout: socket timeout in seconds.

    Returns:
        The installed folder ``<cache_dir>/ml-100k``.

    Raises:
        MovieLensDownloadError: if the download fails (HTTP error, network error, truncated
            body) or the archive is not a valid zip; the message names the URL.
        ChecksumMismatchError: if an extracted file's sum differs; the message names the URL,
            the file and both sums.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{_FOLDER_NAME}-", suffix=".zip.part", dir=cache)
    partial = Path(name)
    try:
        logger.info("downloading %s into %s", url, cache)
        with os.fdopen(handle, "wb") as stream:
            _fetch(url, stream, progress=progress, timeout=timeout)
        return _install(partial, cache, expected_sha256, source=url)
    finally:
        partial.unlink(missing_ok=True)


def install_movielens_zip(
    zip_path: str | Path,
    cache_dir: str | Path | None = None,
    *,
    expected_sha256: Mapping[str, str] | None = None,
) -> Path:
    """Extract a local ``ml-100k.zip`` into ``<cache_dir>/ml-100k`` after verifying its sums.

    Args:
        zip_path: the zip file, as distributed by GroupLens (files under ``ml-100k/``).
        cache_dir: the cache folder (default: :func:`default_cache_dir`); created if missing.
        expected_sha256: file name -> hex SHA-256 (default: the original MovieLens 100K sums).

    Returns:
        The installed folder ``<cache_dir>/ml-100k``.

    Raises:
        FileNotFoundError: if ``zip_path`` does not exist.
        MovieLensDownloadError: if the file is not a valid zip; the message names it.
        ChecksumMismatchError: if an extracted file's sum differs.
    """
    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise FileNotFoundError(
            f"MovieLens archive not found. Received: zip_path={str(zip_path)!r}"
        )
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    return _install(zip_path, cache, expected_sha256, source=str(zip_path))


def _fetch(url: str, stream: BinaryIO, *, progress: bool, timeout: float) -> None:
    """Copy the body of ``url`` into ``stream``, failing on HTTP errors and short reads."""
    request = urllib.request.Request(url, headers={"User-Agent": "dcnrank"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            received = 0
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=_FOLDER_NAME + ".zip",
                disable=not progress,
            ) as bar:
                while chunk := response.read(_CHUNK_BYTES):
                    stream.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as error:
        error.close()
        raise MovieLensDownloadError(
            f"could not download {url}: HTTP {error.code} {error.reason}"
        ) from error
    except urllib.error.URLError as error:
        raise MovieLensDownloadError(f"could not download {url}: {error.reason}") from error
    except (OSError, ValueError) as error:  # socket timeouts, resets, malformed URLs
        raise MovieLensDownloadError(f"could not download {url}: {error}") from error
    if total is not None and received != total:
        raise MovieLensDownloadError(
            f"could not download {url}: received {received} of {total} bytes"
        )


def _install(
    zip_path: Path, cache: Path, expected_sha256: Mapping[str, str] | None, *, source: str
) -> Path:
    """Extract ``zip_path`` into a temporary folder in ``cache``, verify, rename into place."""
    sums = MOVIELENS_100K_SHA256 if expected_sha256 is None else expected_sha256
    target = cache / _FOLDER_NAME
    scratch = Path(tempfile.mkdtemp(prefix=f".{_FOLDER_NAME}-", suffix=".extract", dir=cache))
    try:
        try:
            with zipfile.ZipFile(zip_path) as archive:
                broken = archive.testzip()
                if broken is not None:
                    raise MovieLensDownloadError(f"{source}: corrupt zip member {broken!r}")
                # extractall drops absolute paths and '..' components, so members stay inside.
                archive.extractall(scratch)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as error:
            raise MovieLensDownloadError(f"{source}: not a valid zip archive ({error})") from error
        extracted = scratch / _FOLDER_NAME if (scratch / _FOLDER_NAME).is_dir() else scratch
        try:
            verify_checksums(extracted, sums)
        except ChecksumMismatchError as error:
            relative = str(error).replace(str(extracted) + os.sep, "")
            raise ChecksumMismatchError(f"{source}: {relative}") from error
        replace_folder(extracted, target)
        logger.info("installed MovieLens 100K from %s into %s", source, target)
        return target
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
