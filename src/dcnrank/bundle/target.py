"""`check_bundle_target`: whether a bundle may be saved to a path without destroying anything
dcnrank did not create. `save` calls it, and so do the training runs before they start."""

from __future__ import annotations

import os
from pathlib import Path

from dcnrank.bundle.errors import BundleError
from dcnrank.bundle.format import CONFIG_FILE, KNOWN_FORMATS, MANIFEST_FILE, is_bundle_file
from dcnrank.bundle.manifest import parse_json

__all__ = ["check_bundle_target"]

# How many foreign entries a refusal names.
_SHOWN = 5


def check_bundle_target(path: str | Path) -> Path:
    """Refuse a bundle folder that saving would have to destroy or could not create.

    A bundle is saved by renaming a complete new folder over `path`, so whatever is at
    `path` is replaced whole. That is allowed only for nothing, an empty folder, or a
    dcnrank bundle: a folder whose `manifest.json` parses and names a dcnrank bundle
    format, this one or an older one (or, for a bundle of format version 1, which had no manifest, whose
    `config.json` does) and that holds nothing but bundle files (the bundle's own, and
    the `interactions*.png` heatmaps dcnrank writes there). The check only reads, and is
    cheap: a training run calls it before it reads any data, and `save` again before
    it writes.

    Args:
        path: the bundle folder to be written.

    Returns:
        `path`, as a `Path`.

    Raises:
        BundleError: naming `path` and why: a file or a symbolic link is there, a folder
            that is not a dcnrank bundle (with what shows it) is there, a parent on the
            way is not a folder, or the folder to create it in is not writable.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> (folder / "NOTES.md").write_text("mine") and None
        >>> check_bundle_target(folder / "new") == folder / "new"
        True
        >>> check_bundle_target(folder)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        dcnrank.bundle.errors.BundleError: ...: exists and is not a dcnrank bundle (it holds NOTES.md, ...
    """
    target = Path(path)
    if target.is_symlink():
        raise BundleError(f"{target}: is a symbolic link; refusing to replace it with a bundle")
    if target.exists():
        if not target.is_dir():
            raise BundleError(f"{target}: exists and is not a folder; refusing to replace it with a bundle")
        why = _not_a_bundle(target)
        if why:
            raise BundleError(
                f"{target}: exists and is not a dcnrank bundle ({why}); refusing to replace it: "
                "give a new or empty folder"
            )
        writes_in = target.parent
    else:
        writes_in = _nearest_existing(target.parent)
        if not writes_in.is_dir():
            raise BundleError(f"{target}: cannot create it: {writes_in} is not a folder")
    if not os.access(writes_in, os.W_OK | os.X_OK):
        raise BundleError(f"{target}: cannot write it: the folder {writes_in} is not writable")
    return target


def _nearest_existing(folder: Path) -> Path:
    """`folder` or its nearest ancestor that exists (a file, a folder or a link)."""
    while not folder.exists() and not folder.is_symlink() and folder != folder.parent:
        folder = folder.parent
    return folder


def _not_a_bundle(folder: Path) -> str:
    """Why the existing folder is not a replaceable bundle; empty if it is one (or empty)."""
    entries = sorted(folder.iterdir())
    if not entries:
        return ""
    foreign = [e.name for e in entries if e.is_symlink() or not e.is_file() or not is_bundle_file(e.name)]
    if foreign:
        more = f", and {len(foreign) - _SHOWN} more" if len(foreign) > _SHOWN else ""
        return f"it holds {', '.join(foreign[:_SHOWN])}{more}, which a bundle never does"
    manifest = folder / MANIFEST_FILE
    if manifest.is_file():
        if _names_a_format(manifest, version_one=False):
            return ""
        return f"its {MANIFEST_FILE} does not name a dcnrank bundle format"
    if (folder / CONFIG_FILE).is_file() and _names_a_format(folder / CONFIG_FILE, version_one=True):
        return ""  # a bundle of format version 1, from before bundles had a manifest
    return f"no {MANIFEST_FILE}"


def _names_a_format(path: Path, *, version_one: bool) -> bool:
    """Whether `path` parses as a JSON object naming a dcnrank bundle format (and, for a
    version-1 `config.json`, version 1)."""
    try:
        raw = parse_json(path, path.read_bytes())
    except (OSError, BundleError):
        return False
    if not isinstance(raw, dict) or raw.get("format") not in KNOWN_FORMATS:
        return False
    return not version_one or (raw.get("format_version") == 1 and not isinstance(raw.get("format_version"), bool))
