"""`release_free_memory`: hand memory the process has freed back to the system.

glibc's allocator keeps freed heap memory resident: a tensor freed in one place leaves a
hole that a later one of another size may not fit, so a long run of forward passes
(a validation pass after training steps) grows the resident memory by hundreds of MB
that hold nothing. `malloc_trim(0)` returns the free pages; the next use of them costs a
page fault, so it is called every few batches, not after each. Arrow's own pool
(mimalloc) is released too. Elsewhere than glibc it releases Arrow's pool only.

This module sits at the bottom of the package and imports nothing from dcnrank.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any

__all__ = ["release_free_memory"]


@functools.cache
def _malloc_trim() -> Any:
    """glibc's `malloc_trim`, or None where the C library has none (musl, macOS, Windows)."""
    try:
        library = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return library.malloc_trim
    except (OSError, AttributeError):
        return None


def release_free_memory(arrow: bool = False) -> None:
    """Return the C heap's free pages to the system (and, with `arrow`, Arrow's unused pool).

    Example:
        >>> release_free_memory()
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
    if arrow:
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
