"""Durable file writes and all-or-nothing replacement of a file or a folder.

Bundles, checkpoints, experiment results, reports and the MovieLens cache all write
through these functions, so a crash never leaves a half-written file or folder behind.

A folder is staged under a temporary sibling name, every file and the folder are
fsynced, then it is renamed into place (an existing folder is first renamed aside, then
deleted). A crash leaves either the old folder or the new one at the target, never a
half-written one; at worst a hidden `.NAME.tmp-*` or `.NAME.old-*` sibling remains.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

__all__ = ["fsync_folder", "replace_file", "replace_folder", "staging_folder", "write_file"]


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
    temporary = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    try:
        write_file(temporary, data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_folder(path.parent)


def staging_folder(target: Path) -> Path:
    """Create and return an empty hidden sibling of `target` to build its new content in."""
    staged = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex}")
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
    aside = target.with_name(f".{target.name}.old-{uuid.uuid4().hex}")
    os.replace(target, aside)
    try:
        os.replace(staged, target)
    except BaseException:
        os.replace(aside, target)
        raise
    fsync_folder(parent)
    shutil.rmtree(aside, ignore_errors=True)
