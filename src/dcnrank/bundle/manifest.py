"""`manifest.json`: a bundle's format name and version and the SHA-256 of each of its other
files. Saving writes it last; loading reads it first and checks every file against it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dcnrank.bundle.errors import BundleError
from dcnrank.bundle.format import FORMAT_NAME, FORMAT_VERSION, KNOWN_FORMATS, MANIFEST_FILE, OLD_TABLE_FORMAT_NAME

__all__ = [
    "Manifest",
    "manifest_bytes",
    "parse_json",
    "read_bytes",
    "read_manifest",
    "refusal",
    "verify_files",
    "version_text",
]

# How much of a value a message echoes: a hostile bundle may hold a megabyte in any field.
_ECHO_CHARS = 60


@dataclass(frozen=True)
class Manifest:
    """What `manifest.json` holds.

    Args:
        format: the bundle's format name, :data:`~dcnrank.bundle.format.FORMAT_NAME`.
        format_version: its format version, :data:`~dcnrank.bundle.format.FORMAT_VERSION`.
        sha256: file name -> hex SHA-256, for every file of the bundle but the manifest.
        dcnrank_version: the dcnrank version that wrote it.
    """

    format: str
    format_version: int
    sha256: dict[str, str]
    dcnrank_version: str = ""


def manifest_bytes(files: Mapping[str, bytes], dcnrank_version: str) -> bytes:
    """The `manifest.json` of a bundle made of `files` (name -> content): the format name
    and version this dcnrank writes, and the SHA-256 of each file.

    Example:
        >>> document = json.loads(manifest_bytes({"config.json": b"{}"}, "1.0"))
        >>> document["format"], document["format_version"], document["sha256"]["config.json"][:12]
        ('dcnrank.bundle', 3, '44136fa355b3')
    """
    document = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "dcnrank_version": dcnrank_version,
        "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
    }
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def refusal(format_name: str, version: int, dcnrank_version: object) -> str:
    """Why this dcnrank does not read a bundle of `format_name` version `version` (written by
    `dcnrank_version`), and what to do, in one line; empty for the format it reads.

    Example:
        >>> refusal("dcnrank.bundle", 3, "1.0")
        ''
        >>> refusal("dcnrank.bundle", 2, "0.3.0")  # doctest: +ELLIPSIS
        "a dataset model of an older dcnrank (format 'dcnrank.bundle' version 2, written by dcnrank 0.3.0); ..."
        >>> refusal("dcnrank.bundle", 4, "9.0")  # doctest: +ELLIPSIS
        'bundle format version 4 is newer than this dcnrank (...): this dcnrank reads version 3; upgrade dcnrank'
    """
    written = f"written by dcnrank {version_text(dcnrank_version or '?')}"
    if format_name == OLD_TABLE_FORMAT_NAME:
        return (
            f"a table bundle of an older dcnrank (format {format_name!r} version {version}, {written}); this dcnrank "
            f"reads format {FORMAT_NAME!r} version {FORMAT_VERSION}: retrain it with "
            "`dcnrank train --data FILE --spec SPEC --out DIR`"
        )
    if version < FORMAT_VERSION:
        return (
            f"a dataset model of an older dcnrank (format {format_name!r} version {version}, {written}); this "
            f"dcnrank reads version {FORMAT_VERSION}: retrain it with "
            "`dcnrank train --dataset NAME --split SPLIT --out DIR` (`dcnrank train --help` lists the datasets)"
        )
    if version > FORMAT_VERSION:
        return (
            f"bundle format version {version} is newer than this dcnrank ({written}): this dcnrank reads version "
            f"{FORMAT_VERSION}; upgrade dcnrank"
        )
    return ""


def read_manifest(folder: Path) -> Manifest:
    """Read and check `folder`'s manifest: a JSON object naming the format and version this
    dcnrank reads (:data:`~dcnrank.bundle.format.FORMAT_NAME` version
    :data:`~dcnrank.bundle.format.FORMAT_VERSION`), and a SHA-256 per file.

    Raises:
        BundleError: naming the manifest file: unreadable, truncated or corrupt JSON, not
            a dcnrank manifest, a version that is not an int ≥ 1, or malformed sums; naming
            the folder: a bundle of an older dcnrank or format (:func:`refusal`: retrain it)
            or of a newer one (upgrade dcnrank).
    """
    path = folder / MANIFEST_FILE
    raw = parse_json(path, read_bytes(path))
    if not isinstance(raw, dict):
        raise BundleError(f"{path}: must hold a JSON object. Received: {raw!r:.200}")
    if raw.get("format") not in KNOWN_FORMATS:
        raise BundleError(
            f"{path}: not a dcnrank bundle manifest: `format` must be {FORMAT_NAME!r}. "
            f"Received: format={raw.get('format')!r:.200}"
        )
    version = raw.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise BundleError(
            f"{path}: unknown bundle format version: `format_version` must be {FORMAT_VERSION}. "
            f"Received: format_version={version!r:.200}"
        )
    why = refusal(raw["format"], version, raw.get("dcnrank_version"))
    if why:
        raise BundleError(f"{path.parent}: {why}")
    sums = raw.get("sha256")
    if not isinstance(sums, dict) or not all(isinstance(value, str) for value in sums.values()):
        raise BundleError(f"{path}: `sha256` must map file names to SHA-256 sums. Received: {sums!r:.200}")
    return Manifest(raw["format"], version, dict(sums), str(raw.get("dcnrank_version", "")))


def verify_files(folder: Path, manifest: Manifest, contents: Mapping[str, bytes]) -> None:
    """Refuse the first of `contents` (name -> bytes read, in the order they are checked)
    whose SHA-256 is not the manifest's.

    Raises:
        BundleError: naming the file, its actual sum and the recorded one.
    """
    for name, data in contents.items():
        actual = hashlib.sha256(data).hexdigest()
        recorded = manifest.sha256.get(name)
        if recorded != actual:
            raise BundleError(
                f"{folder / name}: corrupt or modified file: SHA-256 {actual} differs from "
                f"the {recorded!r} recorded in {MANIFEST_FILE}"
            )


def read_bytes(path: Path) -> bytes:
    """The content of one of a bundle's files.

    Raises:
        BundleError: naming the file, if it cannot be read (permissions, removed meanwhile).
    """
    try:
        return path.read_bytes()
    except OSError as error:
        raise BundleError(f"{path}: cannot read it ({error.strerror or error})") from None


def parse_json(path: Path, data: bytes) -> Any:
    """`data`, the content of `path`, as JSON.

    Raises:
        BundleError: naming the file (and line and column) if it is not UTF-8 or not JSON,
            or JSON that Python's parser refuses (nested too deeply, a number of over 4300 digits).

    Example:
        >>> parse_json(Path("config.json"), b"[" * 100_000)
        Traceback (most recent call last):
        ...
        dcnrank.bundle.errors.BundleError: config.json: corrupt JSON that cannot be parsed (nested too deeply)
    """
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise BundleError(f"{path}: corrupt file, not UTF-8 ({error.reason} at byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise BundleError(f"{path}:{error.lineno}:{error.colno}: truncated or corrupt JSON ({error.msg})") from None
    except RecursionError:
        raise BundleError(f"{path}: corrupt JSON that cannot be parsed (nested too deeply)") from None
    except ValueError as error:  # int(): "Exceeds the limit (4300 digits) for integer string conversion ..."
        reason = str(error).split(":")[0]
        raise BundleError(f"{path}: corrupt JSON that cannot be parsed ({reason:.{_ECHO_CHARS * 2}})") from None


def version_text(value: Any) -> str:
    """A recorded dcnrank version as a message shows it: as it is when it looks like one,
    else its repr cut short (a hostile bundle's version may hold line breaks or a megabyte).

    Example:
        >>> version_text("0.1.0"), version_text(None), version_text("9" * 100)[:8]
        ('0.1.0', 'None', "'9999999")
    """
    if isinstance(value, str) and value.isprintable() and len(value) <= _ECHO_CHARS:
        return value
    return f"{value!r:.{_ECHO_CHARS}}"
