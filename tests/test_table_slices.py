"""A table read slice by slice (`TableSlices`) and fitted and encoded in slices (`fit_and_encode`):
the same encoder and rows as one slice, rows placed in a given order, errors naming rows
of later slices, Parquet read from the file on every pass, and int32 embedding rows."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from dcnrank.data.encoding.table_batch import index_dtype
from dcnrank.data.encoding.table_encoder import fit_and_encode
from dcnrank.data.encoding.table_error import TableDataError
from dcnrank.data.sources.table_slices import TableSlices
from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec, MultiHotColumn, NumericColumn

SPEC = FeatureSpec(
    (NumericColumn("x", log1p=True), CategoricalColumn("c", min_count=2), MultiHotColumn("tags"),
     CategoricalColumn("h", hash_buckets=50)),
    label="y", task="ranking", group="q",
)  # fmt: skip


def table(rows: int = 1000, seed: int = 0) -> pa.Table:
    """Rows whose later ones hold longer tag lists (a later slice widens the multi-hot matrix)."""
    rng = np.random.default_rng(seed)
    tags = ["|".join(f"t{k}" for k in rng.integers(0, 30, size=1 + (i * 4) // rows)) for i in range(rows)]
    c = [f"v{k}" if k % 13 else (None if k % 2 else "") for k in rng.integers(0, 60, size=rows)]  # some missing
    return pa.table({
        "x": rng.exponential(size=rows), "c": c,
        "tags": tags, "h": rng.integers(0, 10**6, size=rows), "y": rng.integers(0, 4, size=rows).astype(float),
        "q": [f"query-{k:04d}" if k % 7 else f"q{k}" for k in rng.integers(0, 80, size=rows)],
    })  # fmt: skip


def same_rows(a, b) -> None:
    torch.testing.assert_close(a.features.categorical, b.features.categorical, rtol=0, atol=0)
    torch.testing.assert_close(a.features.numeric, b.features.numeric, rtol=0, atol=0)
    torch.testing.assert_close(a.features.missing, b.features.missing, rtol=0, atol=0)
    assert [t.tolist() for t in a.features.multi_hot] == [t.tolist() for t in b.features.multi_hot]
    torch.testing.assert_close(a.labels, b.labels, rtol=0, atol=0)
    assert a.groups.tolist() == b.groups.tolist()


def test_slices_fit_and_encode_what_one_slice_does_in_any_order():
    data = table()
    fit_rows = np.flatnonzero(np.arange(1000) % 5 != 0)
    whole_encoder, whole = fit_and_encode(SPEC, data, fit_rows)
    encoder, sliced = fit_and_encode(SPEC, TableSlices.read(data, slice_rows=64), fit_rows)
    assert encoder.table_sizes == whole_encoder.table_sizes and encoder.to_dict()["vocabularies"] == \
        whole_encoder.to_dict()["vocabularies"]  # fmt: skip
    assert encoder.numeric["x"] == pytest.approx(whole_encoder.numeric["x"], rel=1e-12)
    same_rows(sliced, whole)
    assert whole.features.multi_hot[0].shape[1] == 4  # the last slice's longest list
    order = np.random.default_rng(1).permutation(1000)
    _, placed = fit_and_encode(SPEC, TableSlices.read(data, slice_rows=64), fit_rows, order=order)
    same_rows(placed, whole.take(torch.from_numpy(order)))
    for bad in (order[:-1], np.concatenate([order[:-1], order[:1]]), order + 1):
        with pytest.raises(ValueError, match="`order`"):
            fit_and_encode(SPEC, data, fit_rows, order=bad)


def test_an_error_in_a_later_slice_names_its_row_in_the_table():
    data = table().to_pydict()
    data["x"][777] = -3.0  # log1p of a value ≤ -1
    data["y"][901] = None  # a missing label
    with pytest.raises(TableDataError, match=r"x\[777\]"):
        fit_and_encode(SPEC, TableSlices.read(pa.table(data), slice_rows=100))
    data["x"][777] = 3.0
    with pytest.raises(TableDataError, match=r"y\[901\]"):
        fit_and_encode(SPEC, TableSlices.read(pa.table(data), slice_rows=100))


def test_parquet_is_read_from_the_file_on_every_pass(tmp_path):
    path = tmp_path / "t.parquet"
    data = table(700)
    pq.write_table(data.append_column("unused", pa.array(["z"] * 700)), path, row_group_size=300)
    slices = TableSlices.read(path, columns=["x", "c", "tags", "h", "y", "q", "not-in-the-file"], slice_rows=128)
    assert slices.num_rows == 700 and "unused" in slices.column_names
    parts = list(slices)
    assert [first for first, _ in parts] == sorted(first for first, _ in parts) and parts[0][0] == 0
    assert sum(p.num_rows for _, p in parts) == 700 and "unused" not in parts[0][1].column_names
    assert [p.num_rows for _, p in slices.head(250)] == [128, 122]
    picked = slices.rows_of(["c"], np.array([3, 699])).column("c").to_pylist()
    assert picked == data.column("c").take([3, 699]).to_pylist()
    fit_rows = np.arange(600)
    _, from_file = fit_and_encode(SPEC, slices, fit_rows)
    _, in_memory = fit_and_encode(SPEC, data, fit_rows)
    same_rows(from_file, in_memory)
    assert pa.types.is_dictionary(parts[0][1].column("c").type)  # the file's own factorisation, kept
    long = data.to_pydict()
    long["c"][650] = "x" * 5000
    pq.write_table(pa.table(long), tmp_path / "long.parquet", row_group_size=300)
    with pytest.raises(TableDataError, match=r"c\[650\]"):
        fit_and_encode(SPEC, TableSlices.read(tmp_path / "long.parquet", slice_rows=128))
    empty = tmp_path / "empty.parquet"
    pq.write_table(data.slice(0, 0), empty)
    assert [p.num_rows for _, p in TableSlices.read(empty)] == [0]


def test_embedding_rows_are_int32_unless_a_table_needs_int64():
    encoder, encoded = fit_and_encode(SPEC, table(50))
    assert encoder.index_dtype == torch.int32
    assert encoded.features.categorical.dtype == encoded.features.multi_hot[0].dtype == torch.int32
    huge = FeatureSpec((CategoricalColumn("h", hash_buckets=2**31),), label="y", task="regression")
    encoder, encoded = fit_and_encode(huge, {"h": [1, 2], "y": [0.0, 1.0]})
    assert encoder.index_dtype == encoded.features.categorical.dtype == torch.int64
    assert index_dtype(2**31 - 1) == torch.int32
