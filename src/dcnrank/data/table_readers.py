"""Read tables: CSV and Parquet files through pyarrow, and pandas DataFrames,
Arrow tables or column mappings in the Python API, all as a `pyarrow.Table`.

CSV cells are read as text, never type-guessed: the feature spec decides what a column
is, and converting it (`dcnrank.data.table_columns`) reports a bad cell by column and
row. Empty cells and the usual null words (``NA``, ``null``, ``nan`` …) are missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from dcnrank.data.table_error import ROWS_SHOWN, TableDataError

__all__ = ["TABLE_FORMATS", "as_arrow_table", "read_table", "source_name", "table_format"]

# file suffix -> format; CSV may also be compressed (`data.csv.gz`), pyarrow unpacks it.
TABLE_FORMATS: Mapping[str, str] = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}
_COMPRESSIONS = (".gz", ".bz2", ".zst", ".lz4")


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
            number of cells are named by their line number.

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
            return pq.read_table(path)
        except (pa.ArrowException, OSError) as error:
            raise TableDataError(f"{path}: not a readable Parquet file ({error})") from None
    return _read_csv(path, delimiter="\t" if fmt == "tsv" else ",")


def _read_csv(path: Path, delimiter: str) -> pa.Table:
    table, bad_lines = _parse_csv(path, delimiter, use_threads=True)
    if bad_lines and any(number is None for number, *_ in bad_lines):
        _, bad_lines = _parse_csv(path, delimiter, use_threads=False)  # only one thread knows line numbers
    if bad_lines:
        shown = "; ".join(
            f"line {number if number is not None else '?'}: {actual} cells, expected {expected}: {text[:80]!r}"
            for number, expected, actual, text in bad_lines[:ROWS_SHOWN]
        )
        more = f" (first {ROWS_SHOWN} shown)" if len(bad_lines) > ROWS_SHOWN else ""
        raise TableDataError(
            f"{path}: {len(bad_lines)} line{'s' if len(bad_lines) != 1 else ''} with the wrong number of "
            f"cells{more}: {shown}"
        )
    return table


def _parse_csv(
    path: Path, delimiter: str, use_threads: bool
) -> tuple[pa.Table, list[tuple[int | None, int, int, str]]]:
    """The table (every column as text) and the lines with the wrong number of cells, skipped."""
    bad_lines: list[tuple[int | None, int, int, str]] = []

    def keep_bad_row(row: Any) -> str:
        bad_lines.append((row.number, row.expected_columns, row.actual_columns, row.text))
        return "skip"  # collect them all, then report

    parse = pa_csv.ParseOptions(delimiter=delimiter, invalid_row_handler=keep_bad_row)
    read = pa_csv.ReadOptions(use_threads=use_threads)
    try:
        with pa_csv.open_csv(path, read_options=read, parse_options=parse) as reader:  # the header
            names = reader.schema.names
        bad_lines.clear()  # read_csv below sees every line again
        convert = pa_csv.ConvertOptions(column_types={name: pa.string() for name in names}, strings_can_be_null=True)
        table = pa_csv.read_csv(path, read_options=read, parse_options=parse, convert_options=convert)
    except pa.ArrowException as error:
        raise TableDataError(f"{path}: not a readable CSV file ({error})") from None
    return table, bad_lines


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

