"""Write tables: `TableWriter` appends chunks to a CSV, TSV or Parquet file, all or nothing;
`write_table` writes one table."""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from dcnrank import atomic
from dcnrank.data.sources.table_readers import table_format

__all__ = ["TableWriter", "write_table"]


class TableWriter:
    """Append tables of one schema to a file; the format follows its name (`.parquet`,
    `.csv`, `.tsv`, CSV/TSV optionally `.gz`).

    The chunks go to a temporary sibling that replaces `path` when the block ends
    without an error; on an error it is deleted, so `path` is never half-written.

    Args:
        path: the file to write (its folder is created).
        row_group_rows: rows per Parquet row group (None: pyarrow's default).

    Raises:
        ValueError: on an unknown suffix.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "t.parquet"
        >>> with TableWriter(path) as writer:
        ...     writer.write(pa.table({"x": [1, 2]}))
        ...     writer.write(pa.table({"x": [3]}))
        >>> pq.read_table(path).column("x").to_pylist(), writer.rows
        ([1, 2, 3], 3)
    """

    def __init__(self, path: str | Path, row_group_rows: int | None = None) -> None:
        self.path = Path(path)
        self.format = table_format(self.path)
        self.row_group_rows = row_group_rows
        self.rows = 0
        self._staged = atomic.staged_table_path(self.path)  # keeps .csv.gz
        self._writer: Any = None
        self._sink: Any = None

    def __enter__(self) -> TableWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self

    def write(self, table: pa.Table) -> None:
        """Append `table` (the first table fixes the schema)."""
        if self._writer is None:
            if self.format == "parquet":
                self._writer = pq.ParquetWriter(self._staged, table.schema)
            else:
                self._sink = pa.output_stream(self._staged, compression="detect")
                options = pa_csv.WriteOptions(delimiter="\t" if self.format == "tsv" else ",")
                self._writer = pa_csv.CSVWriter(self._sink, table.schema, write_options=options)
        if self.format == "parquet":
            self._writer.write_table(table, row_group_size=self.row_group_rows)
        else:
            self._writer.write_table(table)
        self.rows += table.num_rows

    def _close(self) -> None:
        for part in (self._writer, self._sink):
            if part is not None:
                part.close()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._close()
        if kind is not None:
            self._staged.unlink(missing_ok=True)
            return
        if self._writer is None:
            raise ValueError(f"{self.path}: nothing was written (no table was given)")
        os.replace(self._staged, self.path)


def write_table(table: pa.Table, path: str | Path) -> Path:
    """Write `table` as CSV, TSV or Parquet, by the file name; create the parent folder.

    The file appears whole or not at all (through :class:`TableWriter`).

    Args:
        table: the table.
        path: e.g. ``preds.parquet`` or ``preds.csv``.

    Returns:
        The path written.

    Raises:
        ValueError: on an unknown suffix.

    Example:
        >>> import tempfile
        >>> path = write_table(pa.table({"p": [0.5]}), tempfile.mkdtemp() + "/p.parquet")
        >>> pq.read_table(path).to_pydict()
        {'p': [0.5]}
    """
    with TableWriter(path) as writer:
        writer.write(table)
    return writer.path
