"""Durable file writes and all-or-nothing replacement of a file or a folder.

Bundles, checkpoints, experiment results, reports and the MovieLens cache all write
through these functions, so a crash never leaves a half-written file or folder behind.

A folder is staged under a temporary sibling name, every file and the folder are
fsynced, then it is renamed into place (an existing folder is first renamed aside, then
deleted). A crash leaves either the old folder or the new one at the target, never a
half-written one; at worst a hidden `.NAME.tmp-*` or `.NAME.old-*` sibling remains, and
:func:`remove_stale_temporaries` deletes those at the start of the next write of NAME.

dcnrank's temporary siblings of a target NAME are named, exactly:

- `.NAME.tmp-<32 hex>`: a file (:func:`replace_file`) or a folder (:func:`staging_folder`)
  being written;
- `.NAME.old-<32 hex>`: an old folder moved aside by :func:`replace_folder`;
- `.tmp-<8 hex>-NAME`: a table being written (:func:`staged_table_path`, which keeps
  NAME's suffix last, so `.csv.gz` still says how to compress it).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
import uuid
from pathlib import Path

__all__ = [
    "fsync_folder",
    "process_start_time",
    "remove_stale_temporaries",
    "replace_file",
    "replace_folder",
    "staged_table_path",
    "staging_folder",
    "temporary_name_pattern",
    "temporary_sibling",
    "write_file",
]

log = logging.getLogger(__name__)

_IMPORTED_AT = time.time()


def temporary_sibling(target: Path, kind: str) -> Path:
    """`.NAME.tmp-<32 hex>` or `.NAME.old-<32 hex>` beside `target` (see :func:`temporary_name_pattern`)."""
    return target.with_name(f".{target.name}.{kind}-{uuid.uuid4().hex}")


def write_file(path: Path, data: bytes) -> None:
    """Write `data` to `path` and fsync it, so the bytes are on disk before any rename.

    Args:
        path: the file to create or overwrite.
        data: its whole content.
    """
    with open(path, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())


def fsync_folder(folder: Path) -> None:
    """fsync a folder, making the entries created or renamed in it durable (POSIX only)."""
    if os.name != "posix":  # pragma: no cover - Windows cannot open folders
        return
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def replace_file(path: Path, data: bytes) -> None:
    """Write `data` to a temporary sibling of `path`, fsync it, then `os.replace` it into place.

    Readers see the old content or the new one, never a part of it.

    Args:
        path: the file to create or replace.
        data: its whole new content.
    """
    temporary = temporary_sibling(path, "tmp")
    try:
        write_file(temporary, data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_folder(path.parent)


def staging_folder(target: Path) -> Path:
    """Create and return an empty hidden sibling of `target` to build its new content in."""
    staged = temporary_sibling(target, "tmp")
    staged.mkdir()
    return staged


def replace_folder(staged: Path, target: Path) -> None:
    """Move the complete folder `staged` to `target`, replacing what is there.

    An existing `target` is renamed aside first and deleted only once `staged` is in
    place; if that rename fails, the old folder is put back.

    Args:
        staged: a fully written folder (see :func:`staging_folder`), on the same file system.
        target: where it must end up.
    """
    parent = target.parent
    if not target.exists():
        os.replace(staged, target)
        fsync_folder(parent)
        return
    aside = temporary_sibling(target, "old")
    os.replace(target, aside)
    try:
        os.replace(staged, target)
    except BaseException:
        os.replace(aside, target)
        raise
    fsync_folder(parent)
    shutil.rmtree(aside, ignore_errors=True)


def staged_table_path(path: Path) -> Path:
    """The hidden sibling `.tmp-<8 hex>-NAME` a table is written to before it replaces `path`."""
    return path.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{path.name}")


def temporary_name_pattern(names: str) -> re.Pattern[str]:
    """The names of dcnrank's temporary siblings of the targets whose names match `names`.

    Args:
        names: a regular expression that target names match whole (`re.escape(name)`
            for one target; e.g. `checkpoint-[0-9]{9}-[0-9a-f]{8}\\.safetensors` for a family).

    Returns:
        A compiled pattern that :func:`re.fullmatch` uses on a sibling's name.

    Example:
        >>> pattern = temporary_name_pattern(re.escape("b"))
        >>> [bool(pattern.fullmatch(n)) for n in (".b.tmp-" + "0" * 32, ".b.old-" + "a" * 32, ".tmp-0123abcd-b")]
        [True, True, True]
        >>> [bool(pattern.fullmatch(n)) for n in (".b.tmp-notes", ".bb.tmp-" + "0" * 32, "b")]
        [False, False, False]
    """
    return re.compile(rf"\.(?:{names})\.(?:tmp|old)-[0-9a-f]{{32}}|\.tmp-[0-9a-f]{{8}}-(?:{names})")


def process_start_time() -> float:
    """When this process started, in seconds since the epoch (rounded down to the second).

    Read from `/proc` on Linux; elsewhere, when dcnrank was first imported. Anything
    modified before it cannot be being written by this process.
    """
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(
            int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime ")
        )
        # btime is whole seconds: round down again, so the estimate is never after the true start
        return float(int(boot + ticks / os.sysconf("SC_CLK_TCK")) - 1)
    except (OSError, ValueError, IndexError, StopIteration):  # pragma: no cover - not Linux
        return _IMPORTED_AT


def remove_stale_temporaries(target: Path, names: str | None = None) -> list[Path]:
    """Delete the temporary siblings of `target` that a killed dcnrank run left behind.

    A sibling is removed only if its name is one of dcnrank's temporary names for the
    target (see the module docstring; :func:`temporary_name_pattern`) and it, and
    every entry of it if it is a folder, was last modified before this process
    started, so it cannot belong to a write still in progress here. Symbolic links
    and anything else are never touched. Call it at the start of a write.

    Args:
        target: the file or folder about to be written; its siblings are looked at.
        names: a regular expression for a family of target names in `target`'s folder
            instead of `target.name` alone (e.g. every checkpoint tensors file).

    Returns:
        The paths removed.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> stale = folder / f".b.tmp-{uuid.uuid4().hex}"
        >>> stale.mkdir(); os.utime(stale, (0, 0))
        >>> kept = folder / ".b.tmp-notes"
        >>> _ = kept.write_text("mine"); os.utime(kept, (0, 0))
        >>> [p.name for p in remove_stale_temporaries(folder / "b")] == [stale.name], kept.exists()
        (True, True)
    """
    folder = target.parent
    pattern = temporary_name_pattern(re.escape(target.name) if names is None else names)
    started = process_start_time()
    removed: list[Path] = []
    try:
        entries = [entry for entry in folder.iterdir() if pattern.fullmatch(entry.name)]
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        try:
            if entry.is_symlink() or _last_modified(entry) >= started:
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError as error:  # vanished meanwhile, or not ours to remove: leave it
            log.debug("could not remove %s: %s", entry, error)
            continue
        log.info("removed %s, left by an interrupted dcnrank run", entry)
        removed.append(entry)
    return removed


def _last_modified(entry: Path) -> float:
    """The latest mtime of `entry` and, for a folder, of everything in it."""
    latest = entry.lstat().st_mtime
    if entry.is_dir():
        for root, folders, files in os.walk(entry):
            for name in (*folders, *files):
                latest = max(latest, os.lstat(os.path.join(root, name)).st_mtime)
    return latest
