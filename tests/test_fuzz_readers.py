"""Property-based fuzzing of the table readers (issue 12): CSV and Parquet files with random
cells and random damage, read in memory (`read_table` + `TableEncoder`) and streamed
(`TableStream` chunks + `encode`), give a correct result or a short `TableDataError` naming
the file — never another exception, and never a write beside the file."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from fuzz_support import FUZZ, check_report, damaged_bytes, nasty_text
from hypothesis import given
from hypothesis import strategies as st

from dcnrank.data.encoding.table_encoder import STANDARDISED_LIMIT, TableEncoder
from dcnrank.data.encoding.table_error import TableDataError
from dcnrank.data.sources.table_readers import read_table
from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec, MultiHotColumn, NumericColumn
from dcnrank.data.streaming.table_stream import TableStream
from dcnrank.limits import MAX_STRING_CHARS

SPEC = FeatureSpec(
    (
        NumericColumn("x"),
        CategoricalColumn("c"),
        CategoricalColumn("h", hash_buckets=7),
        MultiHotColumn("tags", separator="|"),
    ),
    label="y",
    task="regression",
)
CELLS = nasty_text(max_size=10) | st.sampled_from(["", "1", "-0", "nan", "inf", "1e400", "NULL", "a|b"])
NUMBERS = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(2**70), 2**70).map(str) | CELLS
LONG = st.sampled_from([MAX_STRING_CHARS, MAX_STRING_CHARS + 1]).map(lambda n: "z" * n)


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    """A table with the spec's columns (and sometimes an extra one), cells of every awkward kind."""
    n = draw(st.integers(1, 12))
    text = st.one_of(CELLS, LONG) if draw(st.booleans()) else CELLS
    columns = {
        "y": [str(draw(NUMBERS)) for _ in range(n)],
        "x": [str(draw(NUMBERS)) for _ in range(n)],
        "c": [draw(text) for _ in range(n)],
        "h": [draw(text) for _ in range(n)],
        "tags": [draw(text) for _ in range(n)],
    }
    if draw(st.booleans()):
        columns["extra"] = [draw(CELLS) for _ in range(n)]
    return pa.table(columns)


def csv_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pa_csv.write_csv(table, sink)
    return sink.getvalue()


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=4)
    return sink.getvalue()


# A fitted encoder for the streamed reads, from one well-formed table.
REFERENCE = TableEncoder.fit(
    SPEC, pa.table({"y": ["1", "2"], "x": ["0.5", "1.5"], "c": ["a", "b"], "h": ["p", "q"], "tags": ["a|b", "c"]})
)


def read_both_ways(path: Path) -> None:
    """Read `path` in memory and streamed; each either works or raises a short TableDataError."""
    before = sorted(p.name for p in path.parent.iterdir())
    for read in (_in_memory, _streamed):
        try:
            read(path)
        except TableDataError as error:
            message = check_report(error, max_lines=3)
            assert path.name in message, message
    assert sorted(p.name for p in path.parent.iterdir()) == before, "a read wrote beside the file"


def _in_memory(path: Path) -> None:
    table = read_table(path)
    encoder = TableEncoder.fit(SPEC, table, source=str(path))
    rows = encoder.encode(table, source=str(path))
    assert len(rows) == table.num_rows
    assert np.isfinite(rows.features.numeric.numpy()).all()


def _streamed(path: Path) -> None:
    for chunk in TableStream(path, block_rows=3).chunks():
        rows = REFERENCE.encode(chunk.table, source=str(path))
        assert len(rows) == chunk.table.num_rows
        assert np.isfinite(rows.features.numeric.numpy()).all()


@FUZZ
@given(table=tables(), kind=st.sampled_from(["csv", "parquet"]))
def test_a_table_of_awkward_cells_reads_or_names_the_problem(table, kind):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"t.{kind}"
        path.write_bytes(csv_bytes(table) if kind == "csv" else parquet_bytes(table))
        read_both_ways(path)


@FUZZ
@given(table=tables(), kind=st.sampled_from(["csv", "parquet"]), data=st.data())
def test_a_damaged_file_reads_or_names_the_problem(table, kind, data):
    original = csv_bytes(table) if kind == "csv" else parquet_bytes(table)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"t.{kind}"
        path.write_bytes(data.draw(damaged_bytes(original)))
        read_both_ways(path)


@FUZZ
@given(content=st.binary(max_size=300), name=st.sampled_from(["t.csv", "t.tsv", "t.parquet", "t.csv.gz"]))
def test_random_bytes_read_or_name_the_problem(content, name):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        read_both_ways(path)


def test_a_number_far_outside_the_training_range_encodes_finite():
    rows = REFERENCE.encode(pa.table({"y": ["1"], "x": ["1e300"], "c": ["a"], "h": ["p"], "tags": ["a"]}))
    assert rows.features.numeric.item() == STANDARDISED_LIMIT


def test_a_value_at_the_limit_reads_and_one_over_it_is_named(tmp_path):
    path = tmp_path / "t.csv"
    cells = {"y": ["1", "2"], "x": ["1", "2"], "c": ["a", "z" * MAX_STRING_CHARS], "h": ["a", "b"], "tags": ["a", "b"]}
    path.write_bytes(csv_bytes(pa.table(cells)))
    _in_memory(path)
    cells["c"][1] += "z"
    path.write_bytes(csv_bytes(pa.table(cells)))
    with pytest.raises(TableDataError, match=r"t\.csv: column 'c' holds values longer than 4096 characters"):
        _in_memory(path)
