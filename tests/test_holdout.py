"""The one hold-out (`dcnrank.data.holdout`): which training rows validate, in memory and streamed."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from dcnrank.config import load_config
from dcnrank.config.errors import ConfigError
from dcnrank.data.encoding.table_batch import TableBatch
from dcnrank.data.encoding.table_encoder import TableEncoder
from dcnrank.data.holdout import check_held_out, held_out, validation_split
from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec, NumericColumn
from dcnrank.data.streaming.streamed_table import StreamedTable
from dcnrank.workflows import train
from dcnrank.workflows.train import train_table

# --------------------------------------------------------------------------- the draw


def test_held_out_decides_each_row_from_its_number_and_the_seed():
    assert np.flatnonzero(held_out(0, 10, 0.2, seed=0)).tolist() == [3, 5]
    assert np.flatnonzero(held_out(0, 10, 0.2, seed=1)).tolist() == [3, 6]
    # any slice of the rows draws what the whole draws for them
    whole = held_out(0, 1000, 0.3, seed=7)
    parts = np.concatenate([held_out(start, 100, 0.3, seed=7) for start in range(0, 1000, 100)])
    np.testing.assert_array_equal(parts, whole)
    assert held_out(4, 3, 0.2, seed=0).tolist() == [False, True, False]  # rows 4, 5, 6
    assert not held_out(0, 50, 0.0, seed=0).any() and held_out(0, 50, 1.0, seed=0).all()
    assert held_out(0, 0, 0.5, seed=0).shape == (0,)
    with pytest.raises(ValueError, match=r"`first_row` and `rows` must be ≥ 0\. Received: first_row=-1, rows=3"):
        held_out(-1, 3, 0.5, seed=0)


def test_last_holds_out_the_last_rows():
    fit, val = validation_split(5, 0.4)
    assert fit.tolist() == [0, 1, 2] and val.tolist() == [3, 4]
    fit, val = validation_split(10, 0.05, "last")  # round(0.5) = 0, at least one row
    assert fit.tolist() == list(range(9)) and val.tolist() == [9]
    assert fit.dtype == val.dtype == torch.int64


def test_random_holds_out_the_rows_held_out_draws():
    fit, val = validation_split(10, 0.2, "random", seed=0)
    assert fit.tolist() == [0, 1, 2, 4, 6, 7, 8, 9] and val.tolist() == [3, 5]
    fit, val = validation_split(12, 0.25, "random", seed=4)
    assert val.tolist() == [3, 6, 8, 11] and fit.tolist() == [0, 1, 2, 4, 5, 7, 9, 10]
    assert fit.dtype == val.dtype == torch.int64


def test_a_hold_out_needs_one_validation_row_and_one_fit_row():
    message = r"the training split has 1 rows: too few to hold out data\.validation_fraction=0\.5 for validation"
    with pytest.raises(ValueError, match=message + r" and still train \(1 held out\)"):
        validation_split(1, 0.5)
    with pytest.raises(ValueError, match=r"the training split has 0 rows: too few .*\(0 held out\)"):
        validation_split(0, 0.5)
    # three rows at 0.1: the draw (seed 0) holds none out
    with pytest.raises(ValueError, match=r"the training split has 3 rows: .*fraction=0\.1 .*\(0 held out\)"):
        validation_split(3, 0.1, "random", seed=0)
    # two rows at 0.9: it holds both out
    with pytest.raises(ValueError, match=r"t\.csv has 2 rows: too few .*fraction=0\.9 .*\(2 held out\)"):
        validation_split(2, 0.9, "random", seed=0, what="t.csv")
    check_held_out(2, 1, 0.5)  # one of each: fine
    with pytest.raises(ValueError, match=r"DataFrame has 4 rows: too few .*\(4 held out\)"):
        check_held_out(4, 4, 0.5, what="DataFrame")


def test_validation_split_checks_its_arguments():
    with pytest.raises(ValueError, match=r"`policy` must be one of last, random\. Received: policy='first'"):
        validation_split(10, 0.2, "first")
    with pytest.raises(ValueError, match=r"`fraction` must be in \(0, 1\)\. Received: fraction=1\.0"):
        validation_split(10, 1.0)
    with pytest.raises(ValueError, match=r"`fraction` must be in \(0, 1\)\. Received: fraction=0"):
        validation_split(10, 0, "random")
    with pytest.raises(ValueError, match=r"`n` must be an int ≥ 0\. Received: n=-3"):
        validation_split(-3, 0.2)
    with pytest.raises(ValueError, match=r"`n` must be an int ≥ 0\. Received: n=True"):
        validation_split(True, 0.2)


# --------------------------------------------------------------------------- table runs


def numbered_file(path: Path, rows: int) -> FeatureSpec:
    """A Parquet file (row groups of 64) whose feature `x` is the row number."""
    x = np.arange(rows, dtype=np.float64)
    pq.write_table(pa.table({"x": x, "c": np.arange(rows) % 5, "y": x % 3}), path, row_group_size=64)
    return FeatureSpec((NumericColumn("x"), CategoricalColumn("c")), label="y", task="regression")


def row_numbers(encoder: TableEncoder, features: TableBatch) -> list[int]:
    mean, std = encoder.numeric["x"]
    return np.rint(features.numeric[:, 0].double().numpy() * std + mean).astype(int).tolist()


def test_a_table_held_in_memory_and_streamed_holds_out_the_same_rows(tmp_path):
    spec = numbered_file(tmp_path / "n.parquet", 500)
    config = load_config(overrides=["data.validation=random", "data.validation_fraction=0.2", "data.seed=3"])
    fit, val, encoder, facts, _ = train._in_memory(config, spec, tmp_path / "n.parquet")
    fit_x = fit.features
    streamed = StreamedTable.scan(spec, tmp_path / "n.parquet", validation_fraction=0.2, seed=3, block_rows=100)
    drawn = np.flatnonzero(held_out(0, 500, 0.2, seed=3)).tolist()
    assert row_numbers(encoder, val.features) == drawn == row_numbers(streamed.encoder, streamed.validation.features)
    assert facts["n_validation"] == len(streamed.validation) and facts["n_fit"] == streamed.train_rows
    assert sorted(row_numbers(encoder, fit_x)) == sorted(set(range(500)) - set(drawn))
    assert encoder.numeric["x"] == pytest.approx(streamed.encoder.numeric["x"])  # fitted on the same rows


def test_a_table_run_reads_data_validation(tmp_path):
    spec = numbered_file(tmp_path / "n.parquet", 50)
    last = load_config(overrides=["data.validation=last"])
    fit, val, encoder, _, _ = train._in_memory(last, spec, tmp_path / "n.parquet")
    fit_x = fit.features
    assert row_numbers(encoder, val.features) == [45, 46, 47, 48, 49]
    fit_rows = row_numbers(encoder, fit_x)
    assert sorted(fit_rows) == list(range(45)) and fit_rows != list(range(45))  # fit rows train in a seeded order
    again, *_ = train._in_memory(last, spec, tmp_path / "n.parquet")
    assert row_numbers(encoder, again.features) == fit_rows
    random = load_config(overrides=["data.validation=random"])
    _, val, encoder, _, _ = train._in_memory(random, spec, tmp_path / "n.parquet")
    assert row_numbers(encoder, val.features) == np.flatnonzero(held_out(0, 50, 0.1, seed=0)).tolist()


def test_streaming_refuses_last_before_reading(tmp_path):
    spec = FeatureSpec((NumericColumn("x"),), label="y", task="regression")
    config = load_config(overrides=["data.stream=true", "data.validation=last"])
    with pytest.raises(ConfigError, match=r'data\.validation: "last" does not go with data\.stream=true '
                                          r"\(a stream has no known last rows\)"):  # fmt: skip
        train_table(config, spec, tmp_path / "missing.parquet", tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_table_runs_refuse_a_hold_out_without_validation_or_fit_rows(tmp_path):
    spec = numbered_file(tmp_path / "n.parquet", 3)
    config = load_config(overrides=["data.validation=random", "model.embedding_dim=2", "train.epochs=1"])
    with pytest.raises(ValueError, match=r"n\.parquet has 3 rows: too few to hold out data\.validation_fraction=0\.1 "
                                         r"for validation and still train \(0 held out\)"):  # fmt: skip
        train_table(config, spec, tmp_path / "n.parquet", tmp_path / "b")
    streamed = load_config(overrides=["data.stream=true", "data.validation=random"])
    with pytest.raises(ValueError, match=r"n\.parquet has 3 rows: too few .*\(0 held out\)"):
        train_table(streamed, spec, tmp_path / "n.parquet", tmp_path / "b")
