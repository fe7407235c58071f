"""Table readers: CSV/TSV/Parquet files and DataFrames into Arrow, strict about bad lines; writers round-trip."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dcnrank.data.encoding.table_error import TableDataError
from dcnrank.data.sources.table_readers import as_arrow_table, read_table, source_name, table_format
from dcnrank.data.streaming.table_writer import write_table


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.csv", "csv"), ("a.CSV", "csv"), ("a.csv.gz", "csv"), ("a.tsv", "tsv"), ("a.tsv.bz2", "tsv"),
     ("a.parquet", "parquet"), ("dir.v2/a.pq", "parquet")],
)  # fmt: skip
def test_table_format(name, fmt):
    assert table_format(name) == fmt


@pytest.mark.parametrize("name", ["a.json", "a", "a.gz", "a.parquet.gz"])
def test_table_format_rejects_unknown_suffixes(name):
    with pytest.raises(
        ValueError, match=r"cannot tell the table format of .*: the name must end in \.csv, \.tsv, \.parquet, \.pq"
    ):
        table_format(name)


def test_csv_cells_are_text_and_missing_cells_null(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('id,x,tags\n007,1.5,"a|b"\n8,,NA\n9,nan,\n')
    table = read_table(path)
    assert table.schema.types == [pa.string()] * 3
    assert table.to_pydict() == {"id": ["007", "8", "9"], "x": ["1.5", None, None], "tags": ["a|b", None, None]}


def test_tsv_and_compressed_csv(tmp_path):
    (tmp_path / "t.tsv").write_text("a\tb\n1\tx y\n")
    assert read_table(tmp_path / "t.tsv").to_pydict() == {"a": ["1"], "b": ["x y"]}
    written = write_table(pa.table({"a": ["1", None], "b": ["x", "y"]}), tmp_path / "t.csv.gz")
    assert read_table(written).to_pydict() == {"a": ["1", None], "b": ["x", "y"]}


def test_csv_lines_with_the_wrong_number_of_cells_are_named(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n3\n4,5\n6,7,8\n")
    with pytest.raises(
        TableDataError,
        match=r"bad\.csv: 2 lines with the wrong number of cells: line 3: 1 cells, expected 2: '3'; line 5: 3 cells",
    ):
        read_table(path)


def test_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"table not found\. Received: path='.*nope\.csv'"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(TableDataError, match=r"empty\.csv: not a readable CSV file \(.*Empty CSV file"):
        read_table(tmp_path / "empty.csv")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(TableDataError, match=r"broken\.parquet: not a readable Parquet file"):
        read_table(tmp_path / "broken.parquet")


def test_parquet_round_trip_keeps_types_and_values(tmp_path):
    table = pa.table({"i": pa.array([1, None, 3]), "s": ["a", "b", None], "l": [["x"], [], None], "f": [0.5, 1.5, 2.5]})
    path = write_table(table, tmp_path / "sub" / "t.parquet")
    assert read_table(path).equals(table)
    assert pq.read_table(path).to_pydict()["l"] == [["x"], [], None]


def test_dataframes_and_mappings():
    frame = pd.DataFrame(
        {"x": [1.5, np.nan], "c": ["a", None], "n": pd.array([1, None], dtype="Int64")}, index=[10, 11]
    )
    table = as_arrow_table(frame)
    assert table.column_names == ["x", "c", "n"]  # the index is dropped
    assert table.to_pydict() == {"x": [1.5, None], "c": ["a", None], "n": [1, None]}
    mixed = as_arrow_table(pd.DataFrame({"x": [1, "abc", None]}))  # pyarrow refuses it as it is: text
    assert mixed.to_pydict() == {"x": ["1", "abc", None]}
    assert as_arrow_table({"a": [1, 2]}).to_pydict() == {"a": [1, 2]}
    assert as_arrow_table(table) is table


def test_as_arrow_table_rejects():
    with pytest.raises(ValueError, match=r"DataFrame column names must be strings\. Received: 0"):
        as_arrow_table(pd.DataFrame([[1, 2]]))
    with pytest.raises(ValueError, match=r"`data` columns must be equal-length lists or arrays"):
        as_arrow_table({"a": [1, 2], "b": [1]})
    with pytest.raises(
        ValueError, match=r"`data` must be a pandas DataFrame, a pyarrow Table or a mapping.*Received: list"
    ):
        as_arrow_table([1, 2])


def test_source_names():
    assert source_name(pd.DataFrame()) == "DataFrame" and source_name(pa.table({})) == "Arrow table"
    assert source_name({"a": [1]}) == "data" and source_name("x/y.csv") == "x/y.csv"


def test_write_csv_reads_back_equal(tmp_path):
    table = pa.table({"id": ["a", "b"], "prediction": [0.25, 0.75]})
    back = read_table(write_table(table, tmp_path / "p.csv"))
    assert back.column("id").to_pylist() == ["a", "b"]
    assert [float(v) for v in back.column("prediction").to_pylist()] == [0.25, 0.75]
