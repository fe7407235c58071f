"""Read tables: CSV and Parquet files through pyarrow, and pandas DataFrames,
Arrow tables or column mappings in the Python API, all as a `pyarrow.Table`.

CSV cells are read as text, never type-guessed: the feature spec decides what a column
is, and converting it (`dcnrank.data.encoding.table_columns`) reports a bad cell by column and
row. Empty cells and the usual null words (``NA``, ``null``, ``nan`` …) are missing.

CSV text must be UTF-8. A whole file is checked as UTF-8 (in C++) before pyarrow's
threads parse it; a file read block by block has its cells parsed as bytes and checked
per block. Either way a bad cell is named by column and row. pyarrow's threads are never
handed a Python callback: one released by a pyarrow thread during interpreter exit
aborts the process. A compressed or Parquet file named ``.csv`` is recognised by
its first bytes and refused with what it seems to be.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from dcnrank.data.encoding.table_error import TableDataError
from dcnrank.row_messages import ROWS_SHOWN, describe_rows, rows_from

__all__ = [
    "TABLE_FORMATS",
    "as_arrow_table",
    "check_text_file",
    "check_unique_columns",
    "read_table",
    "source_name",
    "table_format",
    "utf8_columns",
]

# file suffix -> format; CSV may also be compressed (`data.csv.gz`), pyarrow unpacks it.
TABLE_FORMATS: Mapping[str, str] = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}
_COMPRESSIONS = (".gz", ".bz2", ".zst", ".lz4")

# First bytes of files that are not CSV text: what the file seems to be, and the suffix
# that reads it ("" where dcnrank cannot read it as it is).
_MAGIC_BYTES: tuple[tuple[bytes, str, str], ...] = (
    (b"\x1f\x8b", "a gzip file", ".gz"),
    (b"BZh", "a bzip2 file", ".bz2"),
    (b"\x28\xb5\x2f\xfd", "a zstd file", ".zst"),
    (b"\x04\x22\x4d\x18", "an lz4 file", ".lz4"),
    (b"PAR1", "a Parquet file", ".parquet"),
    (b"PK\x03\x04", "a zip archive", ""),
    (b"\xff\xfe", "UTF-16 text", ""),
    (b"\xfe\xff", "UTF-16 text", ""),
)


def table_format(path: str | Path) -> str:
    """``"csv"``, ``"tsv"`` or ``"parquet"``, from the file name.

    Args:
        path: a file name such as ``data.parquet``, ``data.csv`` or ``data.csv.gz``.

    Returns:
        The format.

    Raises:
        ValueError: if the suffix is none of :data:`TABLE_FORMATS` (the message lists them).

    Example:
        >>> table_format("clicks.csv.gz"), table_format("clicks.parquet")
        ('csv', 'parquet')
    """
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] in _COMPRESSIONS and len(suffixes) > 1 and suffixes[-2] in (".csv", ".tsv"):
        suffixes.pop()
    fmt = TABLE_FORMATS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        raise ValueError(
            f"cannot tell the table format of {str(path)!r}: the name must end in "
            f"{', '.join(TABLE_FORMATS)} (CSV and TSV may add {', '.join(_COMPRESSIONS)})"
        )
    return fmt


def read_table(path: str | Path) -> pa.Table:
    """Read a CSV, TSV or Parquet file into an Arrow table.

    CSV and TSV: the first line names the columns; every cell is read as text (or
    missing), so that the feature spec, not a guess, decides each column's type.
    Parquet keeps its own types.

    Args:
        path: the file; its format comes from its name (see :func:`table_format`).

    Returns:
        The table, all columns.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: on an unknown suffix.
        TableDataError: if the file cannot be parsed; for CSV, rows with the wrong
            number of cells are named by their line number, cells that are not UTF-8
            by column and row, and a compressed or Parquet file named ``.csv`` by
            what it seems to be.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = path.write_text("x,y\\n1,a\\n,b\\n")
        >>> read_table(path).to_pydict()
        {'x': ['1', None], 'y': ['a', 'b']}
    """
    path = Path(path)
    fmt = table_format(path)
    if not path.is_file():
        raise FileNotFoundError(f"table not found. Received: path={str(path)!r}")
    if fmt == "parquet":
        try:
            with pq.ParquetFile(path) as file:  # unlike pq.read_table, reads a header naming a column twice
                return file.read()
        except (pa.ArrowException, OSError) as error:
            raise TableDataError(f"{path}: not a readable Parquet file ({error})") from None
    check_text_file(path)
    return _read_csv(path, delimiter="\t" if fmt == "tsv" else ",")


def check_text_file(path: str | Path) -> None:
    """Refuse a ``.csv``/``.tsv`` file whose first bytes say it is not text (gzip, Parquet, zip…).

    A file named with a compression suffix (``.csv.gz``) is left to the reader, which
    unpacks it.

    Args:
        path: the file.

    Raises:
        TableDataError: naming the file and what it seems to be, and how to read it.

    Example:
        >>> import gzip, tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = path.write_bytes(gzip.compress(b"x,y\\n1,2\\n"))
        >>> check_text_file(path)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        dcnrank.data.encoding.table_error.TableDataError: ...t.csv: not CSV text: it starts like a gzip file ...
    """
    path = Path(path)
    if path.suffix.lower() in _COMPRESSIONS:
        return
    try:
        with path.open("rb") as file:
            head = file.read(4)
    except OSError as error:
        raise TableDataError(f"{path}: cannot read ({error.strerror or error})") from None
    for magic, kind, suffix in _MAGIC_BYTES:
        if head.startswith(magic):
            if suffix == ".parquet":
                advice = f"rename it {path.stem}.parquet"
            elif suffix:
                advice = f"rename it {path.name}{suffix}"
            else:
                advice = "save it as UTF-8 CSV" if "text" in kind else "unpack it first"
            raise TableDataError(
                f"{path}: not CSV text: it starts like {kind} (bytes {magic.hex(' ')}); {advice}"
            )


def check_unique_columns(names: Sequence[str], wanted: Iterable[str], source: str) -> None:
    """Refuse a header that names one of the `wanted` columns more than once.

    Args:
        names: the header's column names, in order.
        wanted: the columns that will be read.
        source: the table's name for messages.

    Raises:
        TableDataError: naming the source, the column and its positions (1-based).

    Example:
        >>> check_unique_columns(["c", "x", "c"], ["x"], "t.csv")  # "x" is once: fine
        >>> check_unique_columns(["c", "x", "c"], ["c"], "t.csv")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        dcnrank.data.encoding.table_error.TableDataError: t.csv: column 'c' appears 2 times ... (columns 1 and 3); ...
    """
    counts = Counter(names)
    for name in dict.fromkeys(wanted):
        if counts[name] > 1:
            positions = [str(i + 1) for i, n in enumerate(names) if n == name]
            raise TableDataError(
                f"{source}: column {name!r} appears {counts[name]} times among its columns "
                f"(columns {', '.join(positions[:-1])} and {positions[-1]}); rename or drop all but one"
            )


def utf8_columns(table: pa.Table, source: str) -> pa.Table:
    """`table` with its binary columns (CSV cells as parsed) as UTF-8 text.

    Args:
        table: the table; its other columns are kept as they are.
        source: the table's name for messages.

    Returns:
        The table, binary columns cast to ``string``.

    Raises:
        TableDataError: on a cell that is not UTF-8, naming the column and the rows
            (numbered as :func:`dcnrank.row_messages.describe_rows` numbers them) of
            the first block of rows that has any.

    Example:
        >>> utf8_columns(pa.table({"c": pa.array([b"caf\\xc3\\xa9"])}), "t.csv").column("c").to_pylist()
        ['café']
        >>> utf8_columns(pa.table({"c": pa.array([b"ok", b"caf\\xe9"])}), "t.csv")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        dcnrank.data.encoding.table_error.TableDataError: t.csv: column 'c' must hold UTF-8 text ... c[1]=b'caf\\xe9'
    """
    if not any(pa.types.is_binary(kind) or pa.types.is_large_binary(kind) for kind in table.schema.types):
        return table
    columns = [
        _utf8(column, source, name)
        if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)
        else column
        for name, column in zip(table.column_names, table.columns, strict=True)
    ]
    return pa.Table.from_arrays(columns, names=table.column_names)


def _utf8(column: pa.ChunkedArray, source: str, name: str) -> pa.ChunkedArray:
    text = pa.large_string() if pa.types.is_large_binary(column.type) else pa.string()
    try:
        return pc.cast(column, text)  # checks UTF-8 in C++
    except pa.ArrowInvalid:
        pass
    start = 0
    for chunk in column.chunks:  # find the first bad block, then its bad cells
        try:
            pc.cast(chunk, text)
        except pa.ArrowInvalid:
            cells = chunk.to_pylist()
            bad = [row for row, cell in enumerate(cells) if cell is not None and not _decodes(cell)]
            later = "; later rows not checked" if start + len(chunk) < len(column) else ""
            raise TableDataError(
                f"{source}: column {name!r} must hold UTF-8 text (save the file as UTF-8). "
                f"Received {describe_rows(name, [start + row for row in bad], [cells[row] for row in bad])}{later}"
            ) from None
        start += len(chunk)
    raise TableDataError(f"{source}: column {name!r} must hold UTF-8 text (save the file as UTF-8)")


def _decodes(cell: bytes) -> bool:
    try:
        cell.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _read_csv(path: Path, delimiter: str) -> pa.Table:
    data = _file_bytes(path)
    if not _is_utf8(data):
        raise _non_utf8_error(path, data, delimiter)
    read = pa_csv.ReadOptions(use_threads=False)
    parse = pa_csv.ParseOptions(delimiter=delimiter)
    try:
        with pa_csv.open_csv(pa.BufferReader(data), read_options=read, parse_options=parse) as reader:  # the header
            names = reader.schema.names
        convert = pa_csv.ConvertOptions(column_types={name: pa.string() for name in names}, strings_can_be_null=True)
        # Threads, but no Python callback: a pyarrow thread that releases one at
        # interpreter exit aborts the process ("terminate called without an active exception").
        return pa_csv.read_csv(
            pa.BufferReader(data), read_options=pa_csv.ReadOptions(), parse_options=parse, convert_options=convert
        )
    except pa.ArrowException as error:
        raise _bad_lines_error(path, data, delimiter, error) from None


def _bad_lines_error(path: Path, data: pa.Buffer, delimiter: str, error: pa.ArrowException) -> TableDataError:
    """The error naming every line with the wrong number of cells, found on one thread (which numbers lines)."""
    bad_lines: list[tuple[int, int, int, str]] = []

    def keep_bad_row(row: Any) -> str:
        bad_lines.append((row.number, row.expected_columns, row.actual_columns, row.text))
        return "skip"  # collect them all, then report

    read = pa_csv.ReadOptions(use_threads=False)
    parse = pa_csv.ParseOptions(delimiter=delimiter, invalid_row_handler=keep_bad_row)
    try:
        pa_csv.read_csv(pa.BufferReader(data), read_options=read, parse_options=parse)
    except pa.ArrowException as serial_error:
        return csv_error(path, serial_error)
    if not bad_lines:
        return csv_error(path, error)
    shown = "; ".join(
        f"line {number}: {actual} cells, expected {expected}: {text[:80]!r}"
        for number, expected, actual, text in bad_lines[:ROWS_SHOWN]
    )
    more = f" (first {ROWS_SHOWN} shown)" if len(bad_lines) > ROWS_SHOWN else ""
    return TableDataError(
        f"{path}: {len(bad_lines)} line{'s' if len(bad_lines) != 1 else ''} with the wrong number of "
        f"cells{more}: {shown}"
    )


def _file_bytes(path: Path) -> pa.Buffer:
    """The file's bytes: memory-mapped, or unpacked when its name ends in a compression suffix."""
    try:
        if path.suffix.lower() in _COMPRESSIONS:
            with pa.input_stream(str(path)) as stream:  # the codec comes from the suffix
                return stream.read_buffer()
        return pa.memory_map(str(path)).read_buffer()  # the buffer keeps the mapping alive
    except (pa.ArrowException, OSError) as error:
        raise TableDataError(f"{path}: not a readable CSV file ({error})") from None


def _is_utf8(data: pa.Buffer) -> bool:
    """Whether `data` is UTF-8, checked in C++ without a copy (as one large_binary value cast to text)."""
    offsets = pa.py_buffer(np.array([0, data.size], dtype=np.int64))
    try:
        pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, data]).cast(pa.large_string())
    except pa.ArrowInvalid:
        return False
    return True


def _non_utf8_error(path: Path, data: pa.Buffer, delimiter: str) -> TableDataError:
    """The error for a CSV file that is not UTF-8, naming the cell (column and row) or the line."""
    try:
        _stream_batches(path, data, delimiter)  # raises on the first bad cell, line or header
    except TableDataError as error:
        return error
    return TableDataError(f"{path}: not UTF-8 text; save the file as UTF-8")  # pragma: no cover - bytes outside cells


def _stream_batches(path: Path, data: pa.Buffer, delimiter: str) -> None:
    """Parse `data` on one thread, block by block, checking the cells as UTF-8 (see :func:`utf8_columns`)."""
    read = pa_csv.ReadOptions(use_threads=False)
    parse = pa_csv.ParseOptions(delimiter=delimiter)
    try:
        with pa_csv.open_csv(pa.BufferReader(data), read_options=read, parse_options=parse) as reader:
            names = reader.schema.names
        convert = pa_csv.ConvertOptions(column_types={name: pa.binary() for name in names}, strings_can_be_null=True)
        first = 0
        with pa_csv.open_csv(
            pa.BufferReader(data), read_options=read, parse_options=parse, convert_options=convert
        ) as reader:
            for batch in reader:
                with rows_from(first):
                    utf8_columns(pa.Table.from_batches([batch]), str(path))
                first += batch.num_rows
    except UnicodeDecodeError as error:
        raise header_error(path, error) from None
    except pa.ArrowException as error:
        raise csv_error(path, error) from None


def header_error(path: Path, error: UnicodeDecodeError) -> TableDataError:
    """The error for a CSV header that is not UTF-8 (Arrow decodes the column names in Python)."""
    return TableDataError(
        f"{path}: line 1 (the header) is not UTF-8 text ({error.reason} at byte {error.start}); "
        "save the file as UTF-8"
    )


def csv_error(path: Path, error: pa.ArrowException) -> TableDataError:
    """The error for a CSV file Arrow cannot parse, naming the line where Arrow knows it."""
    line = re.search(r"Row #(\d+)", str(error))
    where = f" at line {line.group(1)}" if line else ""
    return TableDataError(f"{path}: not a readable CSV file{where} ({error})")


def as_arrow_table(data: Any) -> pa.Table:
    """An Arrow table from a pandas DataFrame, an Arrow table, or a mapping of column name to values.

    A DataFrame's index is dropped. A DataFrame column pyarrow cannot convert as it
    is (an object column mixing numbers and text) is converted to text, so that the
    spec's conversion can name the bad cells.

    Args:
        data: a `pandas.DataFrame`, `pyarrow.Table`, or `{name: list or array}`.

    Returns:
        The table.

    Raises:
        ValueError: if `data` is none of these, or a mapping's columns differ in length.

    Example:
        >>> as_arrow_table({"x": [1, 2], "y": ["a", None]}).num_rows
        2
    """
    if isinstance(data, pa.Table):
        return data
    if hasattr(data, "columns") and hasattr(data, "iloc"):  # a pandas DataFrame
        arrays = {}
        for name in data.columns:
            if not isinstance(name, str):
                raise ValueError(f"DataFrame column names must be strings. Received: {name!r}")
            arrays[name] = _series_to_arrow(data[name])
        return pa.table(arrays) if arrays else pa.table({})
    if isinstance(data, Mapping):
        try:
            return pa.table({str(k): v for k, v in data.items()})
        except (pa.ArrowException, TypeError, ValueError) as error:
            raise ValueError(f"`data` columns must be equal-length lists or arrays: {error}") from None
    raise ValueError(
        "`data` must be a pandas DataFrame, a pyarrow Table or a mapping of column name to values. "
        f"Received: {type(data).__name__}"
    )


def _series_to_arrow(series: Any) -> pa.Array:
    try:
        return pa.array(series, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):
        import pandas as pd  # only reached with a DataFrame, so pandas is there

        return pa.array([None if pd.isna(v) else str(v) for v in series], type=pa.string())


def source_name(data: Any) -> str:
    """How error messages name `data`: its path, ``"DataFrame"``, ``"Arrow table"`` or ``"data"``.

    Example:
        >>> source_name("runs/clicks.csv"), source_name({"x": [1]})
        ('runs/clicks.csv', 'data')
    """
    if isinstance(data, str | Path):
        return str(data)
    if isinstance(data, pa.Table):
        return "Arrow table"
    if hasattr(data, "columns") and hasattr(data, "iloc"):
        return "DataFrame"
    return "data"

