"""`TableDataError`: a table's content breaks its feature spec; the message names the
source, the column and the offending rows with their values."""

from __future__ import annotations

__all__ = ["TableDataError"]


class TableDataError(ValueError):
    """A table (file, DataFrame or Arrow table) does not fit its feature spec.

    The message starts with the source (a file path, or ``"DataFrame"``), then names
    the column and quotes the first offending rows as ``column[row]=value``, rows
    counted from 0 after the header (``df.iloc[row]``).

    Example:
        >>> str(TableDataError("data.csv: column 'I1' must hold numbers. Received 1 row: I1[4]='abc'"))
        "data.csv: column 'I1' must hold numbers. Received 1 row: I1[4]='abc'"
    """
