"""`TableStream`: a CSV, TSV or Parquet file read as Arrow record batches, never whole.

The file is cut into *units*: a Parquet file's row groups, or a CSV file's blocks of
`block_rows` rows. Every unit knows its first row in the file, so errors name rows by
their place in the file and the validation hold-out can be decided row by row. Units
are what ranks share (unit `k` of an epoch's order goes to rank `k mod world_size`) and
what an epoch shuffles (Parquet row groups can be read in any order; CSV is read front
to back). Memory holds one unit at a time.

CSV cells are parsed as bytes and checked as UTF-8 block by block (see
`dcnrank.data.sources.table_readers`), so a bad cell is named by its column and row in the file.
A chunk iterator holds its file open until it is exhausted or closed: close it
(`contextlib.closing`) when stopping early.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from dcnrank.data.encoding.table_error import TableDataError
from dcnrank.data.sources.table_readers import (
    check_text_file,
    check_unique_columns,
    csv_error,
    header_error,
    table_format,
    utf8_columns,
)
from dcnrank.row_messages import rows_from

__all__ = ["Chunk", "TableStream"]

# Rows per CSV unit, and per record batch read from a Parquet row group.
DEFAULT_BLOCK_ROWS = 65536


@dataclass(frozen=True, eq=False)
class Chunk:
    """Rows `first_row … first_row + len(table) − 1` of the file (0-based, after the header), from unit `unit`."""

    table: pa.Table
    first_row: int
    unit: int


class TableStream:
    """Read a table file chunk by chunk.

    Args:
        path: a `.csv`, `.tsv` (optionally compressed) or `.parquet` file.
        columns: the columns to read (None: all). Parquet reads only these.
        block_rows: int ≥ 1, rows per chunk (and per CSV unit). Defaults to 65,536.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: on an unknown suffix or a bad `block_rows`.
        TableDataError: if the file cannot be read (a ``.csv`` that is gzip or Parquet,
            a header that is not UTF-8), or a `columns` entry is not in it or is named
            twice in its header.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = path.write_text("x,y\\n" + "".join(f"{i},{i % 2}\\n" for i in range(5)))
        >>> stream = TableStream(path, block_rows=2)
        >>> [(c.first_row, c.table.num_rows) for c in stream.chunks()]
        [(0, 2), (2, 2), (4, 1)]
        >>> [c.first_row for c in stream.chunks(units=[0, 2])]
        [0, 4]
    """

    def __init__(self, path: str | Path, columns: Sequence[str] | None = None, block_rows: int = DEFAULT_BLOCK_ROWS):
        if isinstance(block_rows, bool) or not isinstance(block_rows, int) or block_rows < 1:
            raise ValueError(f"`block_rows` must be a positive int. Received: block_rows={block_rows!r}")
        self.path = Path(path)
        self.format = table_format(self.path)
        if not self.path.is_file():
            raise FileNotFoundError(f"table not found. Received: path={str(self.path)!r}")
        if self.format != "parquet":
            check_text_file(self.path)
        self.block_rows = block_rows
        self.column_names: list[str] = []
        self._columns: list[str] | None = None  # None: every column
        self.column_names = self._read_column_names()
        if columns is not None:
            self.columns = list(columns)
        self._unit_rows: list[int] | None = None

    @property
    def columns(self) -> list[str]:
        """The columns read, all of them unless set (Parquet reads only these)."""
        return list(self.column_names) if self._columns is None else list(self._columns)

    @columns.setter
    def columns(self, columns: Sequence[str]) -> None:
        missing = [c for c in columns if c not in self.column_names]
        if missing:
            raise TableDataError(
                f"{self.path}: missing column(s) {', '.join(map(repr, missing))}; it has {', '.join(self.column_names)}"
            )
        check_unique_columns(self.column_names, columns, str(self.path))
        self._columns = list(columns)

    def _read_column_names(self) -> list[str]:
        try:
            if self.format == "parquet":
                with pq.ParquetFile(self.path) as file:
                    return list(file.schema_arrow.names)
            with self._open_csv() as reader:
                return list(reader.schema.names)
        except UnicodeDecodeError as error:  # Arrow decodes the CSV header in Python
            raise header_error(self.path, error) from None
        except pa.ArrowException as error:
            if self.format != "parquet":
                raise csv_error(self.path, error) from None
            raise TableDataError(f"{self.path}: not a readable PARQUET file ({error})") from None
        except OSError as error:
            raise TableDataError(f"{self.path}: not a readable {self.format.upper()} file ({error})") from None

    @property
    def unit_rows(self) -> list[int]:
        """Rows in each unit, in file order (for CSV this counts the file once, chunk by chunk)."""
        if self._unit_rows is None:
            if self.format == "parquet":
                with pq.ParquetFile(self.path) as file:
                    metadata = file.metadata
                self._unit_rows = [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)]
            else:
                self._unit_rows = [c.table.num_rows for c in self.chunks()]
        return self._unit_rows

    def remember_unit_rows(self, rows: Sequence[int]) -> None:
        """Record the rows per unit that a pass over the file counted (spares CSV a counting pass)."""
        self._unit_rows = [int(r) for r in rows]

    @property
    def num_rows(self) -> int:
        return sum(self.unit_rows)

    def unit_order(self, epoch_seed: int | None) -> list[int]:
        """The units in the order an epoch reads them: shuffled by `epoch_seed` for Parquet,
        file order for CSV (which is read front to back) or when `epoch_seed` is None."""
        units = list(range(len(self.unit_rows)))
        if epoch_seed is None or self.format != "parquet":
            return units
        return [int(u) for u in np.random.default_rng(epoch_seed).permutation(len(units))]

    def chunks(self, units: Sequence[int] | None = None) -> Generator[Chunk, None, None]:
        """The chunks of `units` (None: every unit in file order), in that order.

        Raises:
            TableDataError: if the file cannot be parsed (CSV: naming the line, or the
                column and row of a cell that is not UTF-8).
        """
        if self.format == "parquet":
            yield from self._parquet_chunks(units)
        else:
            wanted = None if units is None else list(units)
            if wanted is not None and wanted != sorted(wanted):
                raise ValueError(f"{self.path}: CSV units are read in file order. Received: units={wanted[:10]}")
            yield from self._csv_chunks(None if wanted is None else set(wanted))

    def _parquet_chunks(self, units: Sequence[int] | None) -> Generator[Chunk, None, None]:
        with pq.ParquetFile(self.path) as file:
            sizes = [file.metadata.row_group(g).num_rows for g in range(file.metadata.num_row_groups)]
            starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()
            for unit in range(len(sizes)) if units is None else units:
                first = starts[unit]
                try:
                    for batch in file.iter_batches(
                        batch_size=self.block_rows, row_groups=[unit], columns=self._columns
                    ):
                        yield Chunk(pa.Table.from_batches([batch]), first, unit)
                        first += batch.num_rows
                except (pa.ArrowException, OSError) as error:
                    raise TableDataError(f"{self.path}: row group {unit} is not readable ({error})") from None

    def _open_csv(self) -> pa_csv.CSVStreamingReader:
        # One thread, so that Arrow's error for a bad line names its row.
        read = pa_csv.ReadOptions(use_threads=False, block_size=1 << 22)
        parse = pa_csv.ParseOptions(delimiter="\t" if self.format == "tsv" else ",")
        convert = pa_csv.ConvertOptions(  # before the header is read, both lists are empty
            column_types={name: pa.binary() for name in self.column_names},  # UTF-8 is checked per block
            strings_can_be_null=True,
            include_columns=self._columns or [],
        )
        return pa_csv.open_csv(self.path, read_options=read, parse_options=parse, convert_options=convert)

    def _csv_chunks(self, units: set[int] | None) -> Generator[Chunk, None, None]:
        pending: list[pa.RecordBatch] = []
        pending_rows = first = unit = 0
        try:
            with self._open_csv() as reader:
                for batch in reader:
                    pending.append(batch)
                    pending_rows += batch.num_rows
                    while pending_rows >= self.block_rows:
                        table = pa.Table.from_batches(pending)
                        block, rest = table.slice(0, self.block_rows), table.slice(self.block_rows)
                        if units is None or unit in units:
                            yield self._text_chunk(block, first, unit)
                        first, unit = first + self.block_rows, unit + 1
                        pending, pending_rows = rest.to_batches(), rest.num_rows
        except pa.ArrowException as error:
            raise csv_error(self.path, error) from None
        if pending_rows and (units is None or unit in units):
            yield self._text_chunk(pa.Table.from_batches(pending), first, unit)

    def _text_chunk(self, block: pa.Table, first: int, unit: int) -> Chunk:
        with rows_from(first):
            return Chunk(utf8_columns(block, str(self.path)), first, unit)
