"""Progress bars that show on a terminal and stay quiet in scripts and logs."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress_enabled(progress: bool | None) -> bool:
    """`progress=None` means: show bars only when stderr is a terminal."""
    if progress is None:
        return sys.stderr.isatty()
    return progress


def progress_bar(iterable: Iterable[T], *, total: int | None, desc: str, enabled: bool | None) -> Iterator[T]:
    """Wrap `iterable` in a tqdm bar, or return it unchanged when disabled."""
    if not progress_enabled(enabled):
        return iter(iterable)
    return iter(tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True))
