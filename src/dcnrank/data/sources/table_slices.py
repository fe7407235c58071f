"""`TableSlices`: a table read slice by slice, pass after pass, so that a reader of a large
table holds one slice of it at a time (`fit_and_encode` reads its training table twice).

A Parquet file is read again from the file on every pass, only the columns asked for, its
text columns as dictionaries (its own factorisation), so it is never whole in memory. A CSV
or TSV file is read whole once (`read_table`: its cells as text) and sliced, as is a
DataFrame or an Arrow table; an Arrow table's slices are views.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dcnrank.data.encoding.table_error import TableDataError
from dcnrank.data.sources.table_readers import as_arrow_table, check_unique_columns, read_table, table_format

__all__ = ["SLICE_ROWS", "TableSlices"]

# Rows per slice: a slice's parsed columns are what a reader holds beside its own results.
SLICE_ROWS = 65536


class TableSlices:
    """The rows of a table, `slice_rows` at a time, as often as they are iterated.

    Build it with :meth:`read`. Iterating yields `(first_row, slice)` pairs in row order.

    Args:
        table: the whole table in memory, or None for a Parquet file read on each pass.
        path: the Parquet file (with `table` None).
        columns: the columns of every slice (None: all).
        rows: how many rows to read, from the first (None: all).
        slice_rows: int ≥ 1, rows per slice.

    Example:
        >>> slices = TableSlices.read({"x": [1, 2, 3], "y": [4, 5, 6]}, slice_rows=2)
        >>> [(first, part.column("x").to_pylist()) for first, part in slices]
        [(0, [1, 2]), (2, [3])]
        >>> slices.head(2).num_rows, slices.rows_of(["y"], np.array([0, 2])).to_pydict()
        (2, {'y': [4, 6]})
    """

    def __init__(
        self,
        table: pa.Table | None,
        path: Path | None = None,
        columns: Sequence[str] | None = None,
        rows: int | None = None,
        slice_rows: int = SLICE_ROWS,
    ):
        if isinstance(slice_rows, bool) or not isinstance(slice_rows, int) or slice_rows < 1:
            raise ValueError(f"`slice_rows` must be a positive int. Received: slice_rows={slice_rows!r}")
        if (table is None) == (path is None):
            raise ValueError("give the table in memory or the Parquet file it is read from, one of the two")
        self._table = table
        self._path = path
        self.slice_rows = slice_rows
        if table is not None:
            self.column_names = list(table.column_names)
            total = table.num_rows
        else:
            with _parquet(path) as file:
                self.column_names = list(file.schema_arrow.names)
                total = file.metadata.num_rows
        self._columns = None if columns is None else list(columns)
        if self._columns is not None:
            check_unique_columns(self.column_names, self._columns, self.name)
        self.num_rows = total if rows is None else min(int(rows), total)

    @classmethod
    def read(cls, data: Any, columns: Sequence[str] | None = None, slice_rows: int = SLICE_ROWS) -> TableSlices:
        """`data`'s slices: a Parquet path read again on each pass (`columns` only; None:
        all); a CSV or TSV path read whole as text (`read_table`); a DataFrame, Arrow table
        or mapping of columns as it is. Columns a slice lacks are the reader's to name.

        Raises:
            FileNotFoundError, ValueError: for a missing file or an unknown suffix.
            TableDataError: if the file cannot be read.
        """
        if isinstance(data, str | Path) and table_format(data) == "parquet":
            path = Path(data)
            if not path.is_file():
                raise FileNotFoundError(f"table not found. Received: path={str(path)!r}")
            names = _schema(path).names
            return cls(None, path, [c for c in columns if c in names] if columns is not None else None,
                       slice_rows=slice_rows)  # fmt: skip
        table = read_table(data) if isinstance(data, str | Path) else as_arrow_table(data)
        return cls(table, slice_rows=slice_rows)

    @property
    def name(self) -> str:
        return str(self._path) if self._path is not None else "Arrow table"

    def head(self, rows: int) -> TableSlices:
        """The first `rows` rows (all of them if the table is shorter)."""
        return TableSlices(self._table, self._path, self._columns, min(rows, self.num_rows), self.slice_rows)

    def __iter__(self) -> Iterator[tuple[int, pa.Table]]:
        """`(first_row, slice)` for every slice, in row order; one empty slice for no rows."""
        if self._table is not None:
            table = self._table.slice(0, self.num_rows)
            if self._columns is not None:
                table = table.select(self._columns)
            for start in range(0, max(self.num_rows, 1), self.slice_rows):
                yield start, table.slice(start, self.slice_rows)
            return
        first = 0
        with _parquet(self._path, text_columns=True) as file:
            try:
                for batch in file.iter_batches(batch_size=self.slice_rows, columns=self._columns):
                    part = pa.Table.from_batches([batch]).slice(0, self.num_rows - first)
                    if part.num_rows or first == 0:
                        yield first, part
                    first += part.num_rows
                    if first >= self.num_rows:
                        return
            except (pa.ArrowException, OSError) as error:
                raise TableDataError(f"{self._path}: not a readable Parquet file ({error})") from None
            if first == 0:  # no rows: one empty slice of the file's columns
                yield 0, file.schema_arrow.empty_table().select(self._columns or self.column_names)

    def rows_of(self, columns: Sequence[str], rows: np.ndarray) -> pa.Table:
        """The `columns` of the rows at `rows` (ascending positions), in that order."""
        keep = np.zeros(self.num_rows, dtype=bool)
        keep[rows] = True
        parts = [part.select(list(columns)).filter(pa.array(keep[first : first + part.num_rows]))
                 for first, part in self]  # fmt: skip
        return pa.concat_tables(parts)


def _parquet(path: Path | None, text_columns: bool = False) -> pq.ParquetFile:
    """The file; with `text_columns`, its text columns read as dictionaries (the file's own
    factorisation: no string is decoded or hashed twice)."""
    text = None
    if text_columns:
        text = [f.name for f in _schema(path) if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    try:
        return pq.ParquetFile(path, read_dictionary=text)
    except (pa.ArrowException, OSError) as error:
        raise TableDataError(f"{path}: not a readable Parquet file ({error})") from None


def _schema(path: Path | None) -> pa.Schema:
    """The file's Arrow schema, read from its footer."""
    try:
        return pq.read_schema(path)
    except (pa.ArrowException, OSError) as error:
        raise TableDataError(f"{path}: not a readable Parquet file ({error})") from None
