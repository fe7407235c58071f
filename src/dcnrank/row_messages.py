"""How error messages quote offending rows: ``column[row]=value`` for the first few, counted
from a chunk's first row in its file (`describe_rows`, `rows_from`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np

__all__ = ["CHARS_SHOWN", "ROWS_SHOWN", "describe_rows", "rows_from"]

# How many offending rows a message quotes; it always counts all of them.
ROWS_SHOWN = 5

# How many characters (or bytes) of a quoted text value a message shows; a longer one is clipped.
CHARS_SHOWN = 40

# Row number of the first row of the table being checked: 0, or a chunk's first row in its file.
_FIRST_ROW: ContextVar[int] = ContextVar("first_row", default=0)


@contextmanager
def rows_from(first_row: int) -> Iterator[None]:
    """Within the block, :func:`describe_rows` numbers rows from `first_row` (counted from the
    enclosing block's first row, when blocks nest: a slice of a chunk).

    A file read in chunks is checked chunk by chunk; inside ``with rows_from(start):``
    the errors about a chunk name rows by their position in the whole file.

    Example:
        >>> with rows_from(1000):
        ...     describe_rows("I1", [4], ["abc"])
        "1 row: I1[1004]='abc'"
        >>> with rows_from(1000), rows_from(20):
        ...     describe_rows("I1", [4], ["abc"])
        "1 row: I1[1024]='abc'"
    """
    token = _FIRST_ROW.set(_FIRST_ROW.get() + first_row)
    try:
        yield
    finally:
        _FIRST_ROW.reset(token)


def describe_rows(column: str, rows: Sequence[int] | np.ndarray, values: Sequence[Any] | np.ndarray) -> str:
    """``"2 rows: I1[4]='abc', I1[9]='x'"``: how many rows, and the first few with their values.

    Args:
        column: the column name.
        rows: every offending row number (0-based), ascending; shown offset by
            the enclosing :func:`rows_from`, if any.
        values: the raw values of those rows, aligned with `rows` (only the first
            :data:`ROWS_SHOWN` are read).

    Returns:
        The description, for the end of an error message. A text value longer than
        :data:`CHARS_SHOWN` is clipped, with its length.

    Example:
        >>> describe_rows("I1", [4, 9], ["abc", None])
        "2 rows: I1[4]='abc', I1[9]=None"
        >>> describe_rows("c", [0], ["x" * 5000])
        "1 row: c[0]='xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'… (5,000 characters)"
    """
    count = len(rows)
    first = _FIRST_ROW.get()
    shown = ", ".join(
        f"{column}[{first + int(r)}]={_shown(v)}"
        for r, v in zip(rows[:ROWS_SHOWN], values[:ROWS_SHOWN], strict=False)
    )
    more = f" (first {ROWS_SHOWN} shown)" if count > ROWS_SHOWN else ""
    return f"{count} row{'s' if count != 1 else ''}{more}: {shown}"


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value


def _shown(value: Any) -> str:
    """`repr` of the value; text past :data:`CHARS_SHOWN` is cut, so one huge cell cannot flood a message."""
    value = _plain(value)
    if isinstance(value, str | bytes) and len(value) > CHARS_SHOWN:
        unit = "characters" if isinstance(value, str) else "bytes"
        return f"{value[:CHARS_SHOWN]!r}… ({len(value):,} {unit})"
    return repr(value)
