"""Untrusted table input fails with one clear error, never a traceback, an abort or unbounded
memory: long strings in vocabulary lookups and category cells, CSV files that are not UTF-8,
headers naming a column twice, and compressed or Parquet files named ``.csv``."""

import gzip
import subprocess
import sys
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from dcnrank.data.encoding.table_encoder import TableEncoder, fit_and_encode
from dcnrank.data.encoding.table_error import TableDataError
from dcnrank.data.encoding.vocabulary import OOV_INDEX, Vocabulary
from dcnrank.data.sources import table_readers
from dcnrank.data.sources.table_readers import check_text_file, check_unique_columns, read_table
from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec, MultiHotColumn, NumericColumn
from dcnrank.data.streaming.streamed_table import StreamedTable
from dcnrank.data.streaming.table_stream import TableStream
from dcnrank.limits import MAX_STRING_CHARS
from dcnrank.row_messages import describe_rows

SPEC = FeatureSpec((CategoricalColumn("c"), NumericColumn("x")), label="y", task="binary")
SPEC_TOML = 'task = "binary"\nlabel = "y"\n[columns]\nc = "categorical"\nx = "numeric"\n'
# Rows in the files whose bad row comes after the first block of every reader: pyarrow's
# 1 MiB in-memory block and TableStream's 65,536-row chunk.
ROWS = 75_000
BAD_ROW = 72_000
MB = 1_000_000


def csv_lines(rows: int = 50) -> list[bytes]:
    return [b"c,x,y"] + [b"v%d,%d,%d" % (i % 37, i % 7, i % 2) for i in range(rows)]


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def not_utf8_csv(path: Path) -> Path:
    """`ROWS` rows; row `BAD_ROW` (0-based, after the header) has the byte 0xff in column c."""
    lines = csv_lines(ROWS)
    lines[BAD_ROW + 1] = b"v\xff1,1,0"
    return write_lines(path, lines)


def peak_bytes(function, *args):
    tracemalloc.start()
    try:
        result = function(*args)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# -- 1. a vocabulary lookup costs the value's own length ---------------------------------


@pytest.mark.parametrize("as_array", [True, False], ids=["<U array", "list"])
def test_a_million_character_lookup_is_oov_in_little_memory(as_array):
    vocabulary = Vocabulary.fit([f"value_{i}" for i in range(20_000)])
    vocabulary.encode(["value_1"])  # the lookup table is built once per vocabulary
    long = "x" * 1_000_000
    query = np.array([long]) if as_array else [long, "value_3"]
    encoded, peak = peak_bytes(vocabulary.encode, query)
    assert encoded.tolist() == ([OOV_INDEX] if as_array else [OOV_INDEX, vocabulary.encode(["value_3"])[0]])
    assert peak < 50 * MB  # numpy's promotion to <U1000000 asked for 74.5 GiB


def test_a_vocabulary_holds_long_values_at_their_own_length():
    values = [f"value_{i}" for i in range(20_000)] + ["x" * MAX_STRING_CHARS]
    vocabulary, peak = peak_bytes(Vocabulary.fit, values)
    assert vocabulary.size == 20_002 and vocabulary.encode(["x" * MAX_STRING_CHARS]).tolist() == [20_001]
    assert peak < 50 * MB  # as <U4096, 20,001 values took 328 MB


def test_numpy_string_dtype_values_are_text():
    values = np.array(["b", "a", "b"] * 300, dtype=np.dtypes.StringDType())  # its quicksort crashes on repeats
    vocabulary = Vocabulary.fit(values)
    assert vocabulary.values.tolist() == ["a", "b"] and vocabulary.encode(values[:2]).tolist() == [2, 1]


def test_text_mixed_with_ints_is_refused():
    with pytest.raises(ValueError, match=r"`values` must hold integers or strings. Received: dtype=object"):
        Vocabulary.fit(["a", 1])
    with pytest.raises(ValueError, match=r"`values` must hold integers or strings. Received: dtype=object"):
        Vocabulary.fit(["a"]).encode([b"a", "b"])


# -- 2. a category value is at most MAX_STRING_CHARS characters --------------------------


def long_value_table(width: int) -> pa.Table:
    values = [f"value_{i}" for i in range(20_000)]
    values[7] = "x" * width
    labels = [i % 2 for i in range(20_000)]
    return pa.table({"c": values, "g": [f"a|{v}" for v in values], "x": [1.0] * 20_000, "y": labels})


@pytest.mark.parametrize(
    ("column", "name"),
    [(CategoricalColumn("c"), "c"), (CategoricalColumn("c", hash_buckets=100), "c"), (MultiHotColumn("g"), "g")],
    ids=["categorical", "hashed", "multi_hot"],
)
def test_a_value_over_the_limit_is_refused_naming_source_row_and_column(column, name):
    spec = FeatureSpec((column,), label="y", task="binary")
    message = (
        rf"t\.csv: column '{name}' holds values longer than {MAX_STRING_CHARS} characters.*"
        rf"Received 1 row: {name}\[7\]='.*'… \(4,097 characters\)"
    )
    with pytest.raises(TableDataError, match=message):
        fit_and_encode(spec, long_value_table(MAX_STRING_CHARS + 1), source="t.csv")


def test_a_value_at_the_limit_is_fitted_in_memory_bounded_by_its_length():
    spec = FeatureSpec((CategoricalColumn("c"), MultiHotColumn("g")), label="y", task="binary")
    (encoder, rows), peak = peak_bytes(fit_and_encode, spec, long_value_table(MAX_STRING_CHARS))
    assert encoder.table_sizes == {"c": 20_001, "g": 20_002}
    assert rows.features.categorical[7, 0] == encoder.vocabularies["c"].encode(["x" * MAX_STRING_CHARS])[0] > 0
    assert peak < 50 * MB  # fixed-width <U4096 arrays took 2.6 GB here


def test_a_streamed_file_names_the_long_value_by_its_row_in_the_file(tmp_path):
    lines = csv_lines(3000)
    lines[2501] = b"%s,1,0" % (b"y" * (MAX_STRING_CHARS + 1))
    path = write_lines(tmp_path / "long.csv", lines)
    with pytest.raises(TableDataError, match=r"long\.csv: column 'c' holds values longer than 4096.*c\[2500\]='y"):
        StreamedTable.scan(SPEC, path, block_rows=1000)


def test_messages_clip_long_values():
    assert describe_rows("c", [3], ["é" * 5000]) == f"1 row: c[3]={'é' * 40!r}… (5,000 characters)"
    clipped = repr(b"\xff" * 40)
    assert describe_rows("c", [3], [b"\xff" * 41]) == f"1 row: c[3]={clipped}… (41 bytes)"


# -- 3. a CSV file that is not UTF-8 -------------------------------------------------------


def test_a_cell_that_is_not_utf8_is_named_by_column_and_row(tmp_path):
    path = not_utf8_csv(tmp_path / "bad.csv")
    message = rf"bad\.csv: column 'c' must hold UTF-8 text.*Received 1 row: c\[{BAD_ROW}\]=b'v\\xff1'"
    with pytest.raises(TableDataError, match=message):
        read_table(path)
    with pytest.raises(TableDataError, match=message):
        StreamedTable.scan(SPEC, path)  # `train` with data.stream=true
    with pytest.raises(TableDataError, match=message):
        list(TableStream(path).chunks())  # `predict`


def test_a_header_that_is_not_utf8_is_named(tmp_path):
    path = write_lines(tmp_path / "head.csv", [b"c\xff,y", b"1,0"])
    message = r"head\.csv: line 1 \(the header\) is not UTF-8 text \(invalid start byte at byte 1\)"
    with pytest.raises(TableDataError, match=message):
        read_table(path)
    with pytest.raises(TableDataError, match=message):
        TableStream(path)


def test_a_short_line_that_is_not_utf8_is_named_without_a_traceback(tmp_path, capfd):
    lines = csv_lines()
    lines[21] = b"caf\xe9,1"
    path = write_lines(tmp_path / "latin1.csv", lines)
    with pytest.raises(TableDataError, match=r"latin1\.csv: not a readable CSV file at line 22 \(.*Expected 3 columns"):
        read_table(path)
    assert capfd.readouterr().err == ""  # pyarrow printed the UnicodeDecodeError of its bad-line handler


def test_lines_with_the_wrong_number_of_cells_are_all_named(tmp_path):
    lines = csv_lines()
    lines[3], lines[31] = b"v1,2", b"v1,2,3,4"
    message = r"2 lines with the wrong number of cells: line 4: 2 cells.*line 32: 4 cells"
    with pytest.raises(TableDataError, match=message):
        read_table(write_lines(tmp_path / "ragged.csv", lines))


def test_threaded_csv_reads_get_no_python_callback(tmp_path, monkeypatch):
    """A pyarrow thread that releases a Python callback during interpreter exit aborts the
    process (exit 134, "terminate called without an active exception"), even after a good read."""
    calls = []
    real = pa_csv.read_csv

    def spy(source, read_options=None, parse_options=None, convert_options=None, **kwargs):
        threads = read_options is None or read_options.use_threads
        calls.append((threads, parse_options is not None and parse_options.invalid_row_handler is not None))
        return real(source, read_options=read_options, parse_options=parse_options, convert_options=convert_options)

    monkeypatch.setattr(table_readers.pa_csv, "read_csv", spy)
    lines = csv_lines()
    read_table(write_lines(tmp_path / "good.csv", lines))
    lines[3] = b"v1,2"
    with pytest.raises(TableDataError, match="wrong number of cells"):
        read_table(write_lines(tmp_path / "ragged.csv", lines))
    assert calls and not any(threads and handler for threads, handler in calls)


def train_command(data: Path, spec: Path, out: Path, stream: bool) -> list[str]:
    return [sys.executable, "-m", "dcnrank", "train", "--data", str(data), "--spec", str(spec), "--out", str(out),
            "train.epochs=1", f"data.stream={'true' if stream else 'false'}", "--quiet"]  # fmt: skip


@pytest.mark.slow
def test_train_on_a_file_that_is_not_utf8_exits_2_with_one_line_every_time(tmp_path):
    path = not_utf8_csv(tmp_path / "bad.csv")
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC_TOML)
    commands = [train_command(path, spec, tmp_path / f"out{i}", stream=i % 2 == 1) for i in range(10)]
    with ThreadPoolExecutor(2) as pool:  # two at a time: the abort came with a busy machine
        runs = list(pool.map(lambda c: subprocess.run(c, capture_output=True, text=True, timeout=300), commands))
    for run in runs:
        assert run.returncode == 2, run.stderr  # it was 134 after the message in some runs
        assert run.stderr.count("\n") == 1 and run.stderr.startswith("dcnrank train: error: "), run.stderr
        assert str(path) in run.stderr and f"c[{BAD_ROW}]" in run.stderr and "Traceback" not in run.stderr
    assert not any((tmp_path / f"out{i}").exists() for i in range(10))


# -- 4. a header naming a spec column twice ------------------------------------------------


def duplicated_header_files(tmp_path: Path) -> list[Path]:
    lines = [b"c,x,y,c"] + [b"v%d,%d,%d,w" % (i % 3, i, i % 2) for i in range(40)]
    csv = write_lines(tmp_path / "dup.csv", lines)
    parquet = tmp_path / "dup.parquet"
    pq.write_table(pa_csv.read_csv(csv), parquet)
    return [csv, parquet]


def test_a_spec_column_named_twice_is_refused_by_every_reader(tmp_path):
    for path in duplicated_header_files(tmp_path):
        message = rf"{path.name}: column 'c' appears 2 times among its columns \(columns 1 and 4\)"
        table = read_table(path)  # the file itself is readable
        with pytest.raises(TableDataError, match=message):
            TableEncoder.fit(SPEC, table, source=str(path))  # in-memory `train`
        encoder = TableEncoder.fit(SPEC, {"c": ["a"], "x": [1.0], "y": [1]})
        with pytest.raises(TableDataError, match=message):
            encoder.encode(table, source=str(path))  # `predict` of a chunk
        with pytest.raises(TableDataError, match=message):
            StreamedTable.scan(SPEC, path)  # data.stream=true
        with pytest.raises(TableDataError, match=message):
            TableStream(path, columns=["c", "y"])


def test_a_column_outside_the_spec_may_be_named_twice(tmp_path):
    lines = [b"c,x,y,z,z"] + [b"v%d,%d,%d,1,2" % (i % 3, i, i % 2) for i in range(40)]
    path = write_lines(tmp_path / "extra.csv", lines)
    assert TableEncoder.fit(SPEC, read_table(path)).table_sizes == {"c": 4}
    assert StreamedTable.scan(SPEC, path).rows == 40
    check_unique_columns(["z", "c", "z"], ["c"], "t.csv")


# -- 5. a compressed or Parquet file named .csv --------------------------------------------


@pytest.mark.parametrize(
    ("content", "seems", "advice"),
    [
        (lambda: gzip.compress(b"c,y\n1,0\n"), "a gzip file", "rename it t.csv.gz"),
        (None, "a Parquet file", "rename it t.parquet"),
        (lambda: b"PK\x03\x04rest", "a zip archive", "unpack it first"),
        (lambda: "c,y\n".encode("utf-16"), "UTF-16 text", "save it as UTF-8 CSV"),
    ],
    ids=["gzip", "parquet", "zip", "utf16"],
)
def test_a_file_that_is_not_csv_text_is_named_with_what_it_seems(tmp_path, capfd, content, seems, advice):
    path = tmp_path / "t.csv"
    if content is None:
        pq.write_table(pa.table({"c": ["a"] * 50, "y": [1] * 50}), path)
    else:
        path.write_bytes(content())
    message = rf"t\.csv: not CSV text: it starts like {seems} \(bytes [0-9a-f ]+\); {advice}"
    with pytest.raises(TableDataError, match=message):
        read_table(path)
    with pytest.raises(TableDataError, match=message):
        TableStream(path)
    assert capfd.readouterr().err == ""  # no "Exception ignored … UnicodeDecodeError"


def test_a_compressed_csv_named_so_is_read(tmp_path):
    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress(b"c,y\na,0\nb,1\n"))
    check_text_file(path)
    assert read_table(path).to_pydict() == {"c": ["a", "b"], "y": ["0", "1"]}
    assert [c.table.num_rows for c in TableStream(path).chunks()] == [2]


@pytest.mark.slow
def test_the_commands_print_one_line_for_misnamed_and_duplicated_files(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC_TOML)
    good = write_lines(tmp_path / "good.csv", csv_lines(200))
    model = tmp_path / "model"
    from dcnrank.cli.main import main

    assert main(train_command(good, spec, model, stream=False)[3:]) == 0  # the model to predict with, in-process
    gz = tmp_path / "gz.csv"
    gz.write_bytes(gzip.compress(good.read_bytes()))
    for path in [gz, *duplicated_header_files(tmp_path)]:
        for command, argv in [
            ("train", train_command(path, spec, tmp_path / "out", stream=False)[3:]),
            ("predict", ["predict", "--model", str(model), "--data", str(path), "--out", str(tmp_path / "p.parquet")]),
        ]:
            run = subprocess.run([sys.executable, "-m", "dcnrank", *argv], capture_output=True, text=True, timeout=300)
            assert run.returncode == 2, run.stderr
            assert run.stderr.count("\n") == 1 and run.stderr.startswith(f"dcnrank {command}: error: {path}: ")
            assert ("not CSV text" if path == gz else "column 'c' appears 2 times") in run.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "p.parquet").exists()
