"""Tables read chunk by chunk (`data.stream`): the one-pass encoder, the row-number hold-out,
the shuffle buffer, streamed training and its checkpoints; and torchrun / DDP training."""

import json
import os
import runpy
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file

from dcnrank.config import load_config
from dcnrank.data.encoding.table_encoder import fit_and_encode
from dcnrank.data.encoding.table_error import TableDataError
from dcnrank.data.holdout import held_out
from dcnrank.data.sources.table_readers import read_table
from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec, NumericColumn, load_feature_spec
from dcnrank.data.streaming.streamed_table import StreamedTable
from dcnrank.data.streaming.table_stream import TableStream
from dcnrank.training import distributed
from dcnrank.workflows.train import train_table
from dcnrank.world import World

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SPEC = EXAMPLES / "criteo_like.toml"
# dropout off: its masks are drawn per process, so one process and two ranks would differ
SMALL = ["model.embedding_dim=4", "model.deep_units=[16]", "model.dropout=0", "train.batch_size=256"]


def run(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env)


def one_thread_env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def criteo(tmp_path_factory):
    """12,000 Criteo-layout rows as Parquet (row groups of 1,000) and as CSV, from the worked
    example's generator run in this process (`test_cli_table` runs it as a script)."""
    root = tmp_path_factory.mktemp("stream")
    generator = runpy.run_path(str(EXAMPLES / "make_criteo_like.py"))
    for name in ("train.parquet", "train.csv"):
        argv = ["--rows", "12000", "--chunk-rows", "5000", "--row-group-rows", "1000", "--out", str(root / name)]
        assert generator["main"](argv) == 0
    return root


def test_chunks_cover_the_file_with_their_row_numbers(criteo):
    for name, units in (("train.parquet", 12), ("train.csv", 6)):
        stream = TableStream(criteo / name, block_rows=2000)
        chunks = list(stream.chunks())
        assert len(stream.unit_rows) == units and stream.num_rows == 12000
        starts = [c.first_row for c in chunks]
        assert starts == sorted(starts) and starts[0] == 0
        assert all(a.first_row + a.table.num_rows == b.first_row for a, b in zip(chunks, chunks[1:], strict=False))
        whole = read_table(criteo / name).column("C3").to_pylist()
        last = chunks[-1]
        assert last.table.column("C3").to_pylist() == whole[last.first_row :]


def test_parquet_epochs_read_row_groups_in_a_seeded_order(criteo):
    stream = TableStream(criteo / "train.parquet")
    order = stream.unit_order(7)
    assert sorted(order) == list(range(12)) and order != list(range(12)) and order == stream.unit_order(7)
    assert [c.unit for c in stream.chunks(order)] == order
    csv = TableStream(criteo / "train.csv")
    assert csv.unit_order(7) == list(range(len(csv.unit_rows)))  # CSV is read front to back


def test_streamed_encoder_equals_the_in_memory_one(criteo):
    """Many chunks fit the same vocabularies and (to rounding) the same statistics as one table."""
    spec = load_feature_spec(SPEC)
    streamed = StreamedTable.scan(spec, criteo / "train.parquet", validation_fraction=0.1, block_rows=700)
    table = read_table(criteo / "train.parquet")
    train_rows = np.flatnonzero(~held_out(0, table.num_rows, 0.1, seed=0))
    encoder, _ = fit_and_encode(spec, table, train_rows)
    assert streamed.encoder.table_sizes == encoder.table_sizes
    for name, vocabulary in encoder.vocabularies.items():
        assert np.array_equal(streamed.encoder.vocabularies[name].values, vocabulary.values), name
    for name, (mean, std) in encoder.numeric.items():
        assert streamed.encoder.numeric[name] == pytest.approx((mean, std), rel=1e-12), name
    assert streamed.train_rows == len(train_rows) and len(streamed.validation) == table.num_rows - len(train_rows)


def numbered_table(path: Path, rows: int, group_rows: int) -> FeatureSpec:
    """A Parquet file whose feature `x` is the row number, so encoded rows can be traced back."""
    x = np.arange(rows, dtype=np.float64)
    pq.write_table(pa.table({"x": x, "c": (np.arange(rows) % 7).astype(np.int64), "y": x % 3}), path,
                   row_group_size=group_rows)  # fmt: skip
    return FeatureSpec((NumericColumn("x"), CategoricalColumn("c")), label="y", task="regression")


def row_numbers(table: StreamedTable, features) -> np.ndarray:
    mean, std = table.encoder.numeric["x"]
    return np.rint(features.numeric[:, 0].double().numpy() * std + mean).astype(int)


def test_holdout_cap_and_training_rows(tmp_path):
    spec = numbered_table(tmp_path / "n.parquet", 5000, 400)
    table = StreamedTable.scan(spec, tmp_path / "n.parquet", validation_fraction=0.2, validation_max_rows=300,
                               block_rows=256)  # fmt: skip
    validation = set(row_numbers(table, table.validation.features).tolist())
    assert len(validation) == 300 and table.train_rows == 4700
    drawn = np.flatnonzero(held_out(0, 5000, 0.2, seed=0))
    assert sorted(validation) == drawn[:300].tolist() and table.holdout_end == drawn[299] + 1
    # one rank, no shuffling: every training row once, in file order, no validation row
    stream = table.training(128, shuffle=False, shuffle_buffer=1000, seed=0)
    seen = np.concatenate([row_numbers(table, xb) for xb, _, _ in stream.batches(0, 0)])
    assert seen.tolist() == sorted(set(range(5000)) - validation)
    assert stream.num_batches(0) == -(-4700 // 128)
    # shuffled: the same rows in another order; the same order again for the same epoch; a resume skips
    shuffled = table.training(128, shuffle=True, shuffle_buffer=1000, seed=0)
    first = np.concatenate([row_numbers(table, xb) for xb, _, _ in shuffled.batches(0, 0)])
    assert sorted(first.tolist()) == seen.tolist() and first.tolist() != seen.tolist()
    again = np.concatenate([row_numbers(table, xb) for xb, _, _ in shuffled.batches(0, 3)])
    assert again.tolist() == first[3 * 128 :].tolist()
    second = np.concatenate([row_numbers(table, xb) for xb, _, _ in shuffled.batches(1, 0)])
    assert second.tolist() != first.tolist()


def test_ranks_share_the_row_groups_and_run_the_same_number_of_batches(tmp_path):
    spec = numbered_table(tmp_path / "n.parquet", 5000, 400)
    table = StreamedTable.scan(spec, tmp_path / "n.parquet", validation_fraction=0.1, block_rows=256)
    streams = [table.training(256, shuffle=True, shuffle_buffer=600, seed=1, world=World(r, 2)) for r in (0, 1)]
    rows = [np.concatenate([row_numbers(table, xb) for xb, _, _ in s.batches(0, 0)]) for s in streams]
    assert streams[0].num_batches(0) == streams[1].num_batches(0)
    assert all(len(batch) == 128 for s in streams for batch, _, _ in list(s.batches(0, 0))[:-1])
    assert not set(rows[0]) & set(rows[1])  # disjoint shares
    groups = [set((r // 400).tolist()) for r in rows]
    assert not groups[0] & groups[1]  # by whole row groups
    with pytest.raises(ValueError, match="multiple of the 2 ranks"):
        table.training(255, shuffle=True, shuffle_buffer=600, seed=1, world=World(0, 2))


def test_a_bad_cell_is_named_by_its_row_in_the_file(tmp_path):
    lines = ["x,c,y"] + [f"{i},a,1" for i in range(3000)]
    lines[2501] = "oops,a,1"  # file row 2500 (0-based, after the header)
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n")
    spec = FeatureSpec((NumericColumn("x"), CategoricalColumn("c")), label="y", task="regression")
    with pytest.raises(TableDataError, match=r"bad\.csv: column 'x' must hold numbers.*x\[2500\]='oops'"):
        StreamedTable.scan(spec, tmp_path / "bad.csv", block_rows=1000)


def test_streaming_needs_a_file_and_whole_files(tmp_path):
    spec = FeatureSpec((NumericColumn("x"),), label="y", task="regression")
    config = load_config(overrides=["data.stream=true", "data.validation=random"])
    with pytest.raises(ValueError, match="pass its path"):
        train_table(config, spec, {"x": [1.0, 2.0], "y": [1.0, 2.0]}, tmp_path / "b")
    numbered_table(tmp_path / "n.parquet", 100, 50)
    capped = load_config(overrides=["data.stream=true", "data.validation=random", "data.max_train_rows=10"])
    with pytest.raises(ValueError, match="max_train_rows"):
        train_table(capped, spec, tmp_path / "n.parquet", tmp_path / "b")


def test_streamed_training_learns_and_predicts(criteo, tmp_path):
    config = load_config(overrides=[*SMALL, "data.stream=true", "data.validation=random", "train.epochs=2",
                                    "data.shuffle_buffer=3000", "train.shuffle=true"])  # fmt: skip
    result = train_table(config, load_feature_spec(SPEC), criteo / "train.parquet", tmp_path / "bundle")
    validation = result.metrics["validation"]
    assert result.metrics["data"]["streamed"] is True and result.metrics["data"]["rows"] == 12000
    assert validation["rows"] == result.metrics["data"]["n_validation"] > 1000
    assert validation["auc"] > 0.6  # the planted signal is learnt (the true probabilities score ~0.86)
    proc = run("-m", "dcnrank", "predict", "--model", tmp_path / "bundle", "--data", criteo / "train.csv",
               "--out", tmp_path / "p.parquet", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["rows"] == 12000


def torchrun(nproc: int, *args) -> subprocess.CompletedProcess:
    """`torchrun --standalone`: its rendezvous store listens on a port the OS assigns as it binds,
    so runs started at once (tests on parallel workers) never race for a port picked beforehand."""
    return run("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", nproc, "-m", "dcnrank", *args,
               env={**one_thread_env(), "GLOO_SOCKET_IFNAME": "lo"})  # fmt: skip


def weights(bundle: Path) -> dict[str, torch.Tensor]:
    return load_file(bundle / "weights.safetensors")


@pytest.mark.slow
def test_two_processes_equal_one_with_the_same_global_batch(criteo, tmp_path):
    """torchrun with 2 ranks (DDP, gloo), each on half of every 256-row batch, ends where one process does."""
    args = ["train", "--data", criteo / "train.csv", "--spec", SPEC, *SMALL, "train.epochs=2", "train.shuffle=true",
            "--quiet", "--json"]  # fmt: skip
    one = run("-m", "dcnrank", *args, "--out", tmp_path / "one", env=one_thread_env())
    assert one.returncode == 0, one.stderr
    two = torchrun(2, *args, "--out", tmp_path / "two")
    assert two.returncode == 0, two.stderr
    summary = json.loads(two.stdout)  # rank 0 alone prints
    assert summary["bundle"] == str(tmp_path / "two")
    a, b = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5, msg=name)
    assert json.loads(one.stdout)["validation"]["auc"] == pytest.approx(summary["validation"]["auc"], abs=1e-4)


@pytest.mark.slow
def test_two_processes_stream_their_own_row_groups(criteo, tmp_path):
    two = torchrun(2, "train", "--data", criteo / "train.parquet", "--spec", SPEC, *SMALL, "data.stream=true",
                   "train.epochs=1", "--out", tmp_path / "two", "--json")  # fmt: skip
    assert two.returncode == 0, two.stderr
    summary = json.loads(two.stdout)
    assert summary["validation"]["auc"] > 0.55
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert metrics["data"]["ranks"] == 2 and metrics["data"]["streamed"] is True


@pytest.mark.slow
def test_streamed_run_killed_mid_epoch_resumes_to_the_same_weights(criteo, tmp_path):
    args = ["train", "--data", criteo / "train.parquet", "--spec", SPEC, *SMALL, "data.stream=true",
            "train.epochs=2", "train.shuffle=true", "data.shuffle_buffer=2000", "train.checkpoint_every=5",
            "--quiet"]  # fmt: skip
    whole = run("-m", "dcnrank", *args, "--out", tmp_path / "whole", env=one_thread_env())
    assert whole.returncode == 0, whole.stderr
    ckpt = tmp_path / "ckpt"
    proc = subprocess.Popen([sys.executable, "-m", "dcnrank", *map(str, args), "--out", tmp_path / "resumed",
                             "--checkpoint-dir", ckpt], env=one_thread_env())  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            state = ckpt / "checkpoint.json"
            if state.exists() and json.loads(state.read_text())["batch"] > 0:  # mid-epoch
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert not (tmp_path / "resumed").exists()
    resumed = run("-m", "dcnrank", *args, "--out", tmp_path / "resumed", "--checkpoint-dir", ckpt, "--resume",
                  env=one_thread_env())  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    a, b = weights(tmp_path / "whole"), weights(tmp_path / "resumed")
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6, msg=name)


def test_predict_file_streams_and_leaves_nothing_on_error(tmp_path):
    spec = FeatureSpec((NumericColumn("x"), CategoricalColumn("c")), label="y", task="regression")
    lines = ["x,c,y"] + [f"{i},{'ab'[i % 2]},{i % 3}" for i in range(3000)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    config = load_config(overrides=["model.structure=cross_only", "model.embedding_dim=2", "train.epochs=1"])
    train_table(config, spec, tmp_path / "t.csv", tmp_path / "b")
    from dcnrank.bundle import load
    from dcnrank.workflows.predict import predict_file, predict_table

    bundle = load(tmp_path / "b")
    rows, metrics = predict_file(bundle, tmp_path / "t.csv", tmp_path / "p.csv.gz", keep=["c"], block_rows=700)
    assert rows == 3000 and metrics["rows"] == 3000
    streamed = read_table(tmp_path / "p.csv.gz")
    whole = predict_table(bundle, read_table(tmp_path / "t.csv"), keep=["c"])
    assert streamed.column("c").to_pylist() == whole.table.column("c").to_pylist()
    np.testing.assert_allclose(np.asarray(streamed.column("prediction").to_pylist(), dtype=float),
                               whole.table.column("prediction").to_numpy(), rtol=1e-5)  # fmt: skip
    assert metrics["rmse"] == pytest.approx(whole.metrics["rmse"], rel=1e-6)
    lines[2801] = "7,a,oops"
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(TableDataError, match=r"y\[2800\]='oops'"):
        predict_file(bundle, tmp_path / "bad.csv", tmp_path / "q.parquet", block_rows=700)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".parquet")) == []


def test_a_csv_is_read_once_per_pass(criteo, monkeypatch):
    """The scan counts the CSV's blocks as it goes; an epoch reads the file once more, no extra counting pass."""
    calls = []
    original = TableStream.chunks

    def counted(self, units=None):
        calls.append(units)
        return original(self, units)

    monkeypatch.setattr(TableStream, "chunks", counted)
    table = StreamedTable.scan(load_feature_spec(SPEC), criteo / "train.csv", block_rows=5000)
    assert len(calls) == 1 and table.stream.unit_rows == [5000, 5000, 2000]
    stream = table.training(512, shuffle=True, shuffle_buffer=4000, seed=0)
    assert sum(len(x) for x, _, _ in stream.batches(0, 0)) == table.train_rows
    assert len(calls) == 2


def test_a_bad_rank_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match="RANK must be in 0..WORLD_SIZE-1"):
        distributed.world_from_env()


def test_prefetched_keeps_order_raises_the_producers_error_and_stops_early():
    from dcnrank.data.streaming.streamed_table import prefetched

    def failing():
        yield 1
        raise TableDataError("bad chunk")

    assert list(prefetched(iter(range(100)), depth=3)) == list(range(100))
    items = prefetched(failing())
    assert next(items) == 1
    with pytest.raises(TableDataError, match="bad chunk"):
        next(items)
    early = prefetched(iter(range(10**9)))
    assert [next(early) for _ in range(3)] == [0, 1, 2]
    early.close()  # the producer stops instead of running on


def test_multi_hot_columns_stream_with_chunks_of_different_widths(tmp_path):
    """Chunks whose longest item list differs are padded when the shuffle buffer joins them."""
    from dcnrank.data.spec.feature_spec import MultiHotColumn

    rng = np.random.default_rng(0)
    rows = 3000
    tags = ["|".join(f"t{j}" for j in rng.choice(20, size=1 + i // 1000, replace=False)) for i in range(rows)]
    data = pa.table({"x": rng.normal(size=rows), "g": tags, "y": rng.normal(size=rows)})
    pq.write_table(data, tmp_path / "m.parquet", row_group_size=1000)
    spec = FeatureSpec((NumericColumn("x"), MultiHotColumn("g")), label="y", task="regression")
    table = StreamedTable.scan(spec, tmp_path / "m.parquet", validation_fraction=0.1, block_rows=500)
    assert table.encoder.vocabularies["g"].size == 21
    stream = table.training(256, shuffle=True, shuffle_buffer=1200, seed=0)
    widths = {x.multi_hot[0].shape[1] for x, _, _ in stream.batches(0, 0)}
    assert max(widths) == 3 and sum(len(y) for _, y, _ in stream.batches(0, 0)) == table.train_rows
    config = load_config(overrides=["data.stream=true", "data.validation=random", "train.epochs=1",
                                    "model.embedding_dim=4", "train.shuffle=true",
                                    "data.shuffle_buffer=1200"])  # fmt: skip
    result = train_table(config, spec, tmp_path / "m.parquet", tmp_path / "b")
    assert result.metrics["data"]["n_fit"] == table.train_rows
