"""`make bench-peers`' harness (benchmarks/peers/): AUC and log loss by hand, the shared
table's encoding, the FLOP and parameter counts, step timing, the driver's table, and the
dcnrank runner in-process on a tiny table. No peer venv and no network are needed."""

from __future__ import annotations

import argparse
import doctest
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

PEERS = Path(__file__).resolve().parents[1] / "benchmarks" / "peers"
sys.path.insert(0, str(PEERS))

import bench_peers  # noqa: E402
import common  # noqa: E402
import encode  # noqa: E402
import matmul_peak  # noqa: E402
import run_dcnrank  # noqa: E402


@pytest.mark.parametrize("module", [common, encode, bench_peers, run_dcnrank])
def test_docstring_examples_run(module) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


# --------------------------------------------------------------------------- metrics


def test_auc_averages_ties_by_hand() -> None:
    # positives 0.5, 0.9, 0.2; negatives 0.2, 0.5. Pairs (pos, neg): (.5,.2)=1 (.5,.5)=½
    # (.9,.2)=1 (.9,.5)=1 (.2,.2)=½ (.2,.5)=0 → 4 of 6
    labels = np.array([0, 1, 0, 1, 1])
    scores = np.array([0.2, 0.5, 0.5, 0.9, 0.2])
    assert common.auc(labels, scores) == pytest.approx(4 / 6)


def test_auc_of_constant_scores_is_one_half_and_of_a_perfect_order_one() -> None:
    labels = np.array([1, 0, 1, 0])
    assert common.auc(labels, np.zeros(4)) == 0.5
    assert common.auc(labels, np.array([0.9, 0.1, 0.8, 0.2])) == 1.0


def test_auc_refuses_one_class_and_unequal_lengths() -> None:
    with pytest.raises(ValueError, match="needs both classes"):
        common.auc(np.ones(3), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="same length"):
        common.auc(np.array([0, 1]), np.array([0.1]))


def test_logloss_by_hand_and_clipped() -> None:
    # −(ln 0.8 + ln 0.6) / 2
    assert common.logloss(np.array([1, 0]), np.array([0.8, 0.4])) == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)
    assert math.isfinite(common.logloss(np.array([1, 0]), np.array([0.0, 1.0])))  # clipped, not inf


def test_sigmoid_is_stable_for_large_logits() -> None:
    np.testing.assert_allclose(common.sigmoid(np.array([-1000.0, 0.0, 1000.0])), [0.0, 0.5, 1.0])


# --------------------------------------------------------------------------- the table


def test_encoding_keeps_tokens_seen_three_times_in_the_training_rows() -> None:
    # 10 rows: the first 8 are training rows.
    # A (counts): 5 ×3, None ×3, 7 ×2 there → 5 → 1, None → 2 (first seen later), 7 and the test row's 9 → 0.
    # B (categories): y ×4, x ×3, z ×1 there → y → 1, x → 2, z → 0 (z's test rows do not count).
    table = pa.table(
        {
            "label": pa.array([1, 0, 0, 1, 0, 0, 1, 0, 1, 0]),
            "A": pa.array([5, 5, 5, 7, None, None, None, 7, 5, 9]),
            "B": pa.array(["x", "y", "x", "y", "x", "y", "z", "y", "z", "z"]),
        }
    )
    encoded = encode.encode_table(table, columns=("A", "B"))
    assert encoded["ids"].dtype == np.int32
    assert encoded["ids"][:, 0].tolist() == [1, 1, 1, 0, 2, 2, 2, 0, 1, 0]
    assert encoded["ids"][:, 1].tolist() == [2, 1, 2, 1, 2, 1, 0, 1, 0, 0]
    assert encoded["vocabulary_sizes"] == [3, 3]
    assert encoded["train_rows"] == 8
    assert encoded["labels"].dtype == np.float32


def test_encoding_names_a_missing_column() -> None:
    with pytest.raises(ValueError, match="lacks column"):
        encode.encode_table(pa.table({"label": [0, 1], "A": [1, 2]}), columns=("A", "C1"))


def tiny_folder(folder: Path, rows: int = 2000, seed: int = 0) -> Path:
    """A pre-encoded table of `rows` rows and 39 small vocabularies, labels tied to one column."""
    rng = np.random.default_rng(seed)
    sizes = [int(s) for s in rng.integers(2, 12, len(encode.COLUMNS))]
    ids = np.stack([rng.integers(0, size, rows) for size in sizes], axis=1).astype(np.int32)
    labels = (rng.random(rows) < np.where(ids[:, 0] % 2 == 0, 0.7, 0.2)).astype(np.float32)
    encode.write_encoded({"ids": ids, "labels": labels, "vocabulary_sizes": sizes, "train_rows": rows * 4 // 5}, folder)
    return folder


def test_written_files_load_split_in_stored_order(tmp_path: Path) -> None:
    data = common.load_data(tiny_folder(tmp_path, rows=100))
    assert data.train_ids.shape == (80, 39) and data.test_ids.shape == (20, 39)
    assert data.train_ids.dtype == np.int32 and data.test_labels.dtype == np.float32
    np.testing.assert_array_equal(np.concatenate([data.train_ids, data.test_ids]), np.load(tmp_path / "ids.npy"))


def test_load_data_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="ids.npy: missing"):
        common.load_data(tmp_path)


# --------------------------------------------------------------------------- cost and size


def test_flops_per_row_by_hand() -> None:
    d = 39 * 16  # 624
    by_hand = 3 * 2 * d * d + 2 * d * 400 + 2 * 400 * 400 + 2 * (d + 400) * 1
    assert by_hand == 3_157_504
    assert common.forward_flops_per_row(39) == by_hand
    assert common.train_flops_per_row(39) == 3 * by_hand == bench_peers.FLOP_PER_ROW


def test_flops_per_row_match_the_dcnrank_models_matrices() -> None:
    model = run_dcnrank.build_dcn(run_dcnrank.model_config(), vocabulary_sizes=[3] * 39)
    matrices = [p for name, p in model.named_parameters() if p.dim() == 2 and not name.startswith("inputs")]
    assert sum(2 * p.shape[0] * p.shape[1] for p in matrices) == common.forward_flops_per_row(39)
    assert run_dcnrank.count_parameters(model) == common.expected_parameters([3] * 39)


def test_check_parameters_names_both_counts() -> None:
    expected = common.expected_parameters([5, 3])
    assert common.check_parameters(expected, [5, 3]) == expected
    with pytest.raises(ValueError, match=f"has 5 parameters, the protocol's has {expected:,}"):
        common.check_parameters(5, [5, 3])


def test_step_timer_leaves_out_the_first_five_steps() -> None:
    # 8 steps of 10 rows: the steady ones are steps 6–8, lasting 1, 2 and 3 s
    marks = [0.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 17.0]
    summary = common.StepTimer(marks=marks, ended=20.0).summary([10] * 8)
    assert summary["steady_from_step"] == 6
    assert summary["median_step_s"] == 2.0
    assert summary["steady_rows_per_s"] == 5.0  # 10 rows / 2 s
    assert summary["mean_rows_per_s"] == 5.0  # 30 rows / 6 s
    assert summary["first_step_s"] == 10.0 and summary["last_step_s"] == 3.0


def test_step_timer_refuses_a_step_count_that_is_not_the_epochs() -> None:
    with pytest.raises(ValueError, match="2 steps were marked, the epoch has 3"):
        common.StepTimer(marks=[0.0, 1.0], ended=2.0).summary([4, 4, 2])


# --------------------------------------------------------------------------- the dcnrank runner


def test_dcnrank_runner_in_process_returns_a_full_record(tmp_path: Path) -> None:
    args = argparse.Namespace(data=str(tiny_folder(tmp_path)), seed=0, set=None)
    record = run_dcnrank.benchmark(args)
    assert set(record) == set(common.RECORD_KEYS)
    assert record["library"] == "dcnrank" and record["precision"] == "fp32"
    assert record["train_rows"] == 1600 and record["test_rows"] == 400 and record["steps"] == 1
    assert record["parameters"] == common.expected_parameters(
        json.loads((tmp_path / "vocab.json").read_text())["vocabulary_sizes"]
    )
    assert 0.0 <= record["test_auc"] <= 1.0 and record["test_logloss"] > 0
    assert record["steady_rows_per_s"] > 0 and record["inference_rows_per_s"] > 0
    assert record["settings"]["batch_size"] == 4096 and record["settings"]["shuffle"] is False
    json.dumps(record)  # one JSON line


def test_dcnrank_sets_reach_train_config() -> None:
    config = run_dcnrank.train_config(seed=3, sets=["train.precision=bf16", "train.eval_batch_size=512"])
    assert (config.precision, config.eval_batch_size, config.seed) == ("bf16", 512, 3)
    assert (config.learning_rate, config.weight_decay, config.batch_size, config.epochs) == (1e-3, 0.0, 4096, 1)
    assert config.shuffle is False


@pytest.mark.parametrize(
    ("item", "match"),
    [
        ("train.precison=bf16", "did you mean train.precision"),
        ("model.embedding_dim=8", "takes train.KEY=VALUE"),
        ("train.precision", "takes train.KEY=VALUE"),
    ],
)
def test_dcnrank_sets_are_checked(item: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        run_dcnrank.parse_sets([item])


def test_dcnrank_runner_prints_one_json_line_and_reports_a_failure(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(PEERS / "run_dcnrank.py"), "--data", str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode == 1 and done.stdout == ""
    assert bench_peers.last_line(done.stderr).startswith("FileNotFoundError:")


# --------------------------------------------------------------------------- the driver


def record(library: str, variant: str, seed: int, rate: float, auc: float, **extra) -> dict:
    base = dict.fromkeys(common.RECORD_KEYS)
    base.update(
        library=library, variant=variant, seed=seed, precision="fp32", parameters=10, steady_rows_per_s=rate,
        epoch_s=2.0, first_step_s=0.5, test_auc=auc, test_logloss=0.5, inference_rows_per_s=100.0, peak_rss_mb=50.0,
        quiet=True,
    )  # fmt: skip
    base.update(extra)
    return base


def test_summary_means_seeds_and_scales_by_the_peak_and_the_best_peer() -> None:
    runs = [
        record("dcnrank", "fp32", 0, 3000.0, 0.70),
        record("dcnrank", "fp32", 1, 1000.0, 0.72),
        record("torchrec", "default", 0, 1000.0, 0.71),
        record("deepctr", "default", 0, 500.0, 0.71, quiet=False, busy_before=0.5),
        {"library": "fuxictr", "variant": "default", "seed": 0, "failed": "ModuleNotFoundError: No module named x"},
    ]
    rows = {r["library"]: r for r in bench_peers.summarise(runs, {"fp32": 100.0})}
    dcn = rows["dcnrank"]
    assert dcn["rows_per_s"] == 2000.0
    assert dcn["of_peak"] == pytest.approx(2000.0 * bench_peers.FLOP_PER_ROW / 100e9)
    assert dcn["of_best_peer"] == 2.0 and rows["torchrec"]["of_best_peer"] == 1.0
    assert dcn["auc_mean"] == pytest.approx(0.71) and dcn["auc_std"] == pytest.approx(math.sqrt(2) * 0.01)
    assert rows["deepctr"]["busy"] and not dcn["busy"]
    table = bench_peers.format_table(list(rows.values()))
    assert "| deepctr / default ! |" in table
    assert "| fuxictr / default | failed: ModuleNotFoundError: No module named x |" in table
    assert "0.7100 ± 0.0141" in table
    assert "WARNING: 1 of 5 runs" in bench_peers.busy_warning(runs, 60)


def test_parse_record_takes_the_last_json_line() -> None:
    stdout = 'Please check the latest version\n{"library": "deepctr", "seed": 0}\n'
    assert bench_peers.parse_record(stdout) == {"library": "deepctr", "seed": 0}
    with pytest.raises(ValueError, match="no JSON record"):
        bench_peers.parse_record("cpu\n{not json\n")


def test_variants_run_dcnrank_per_variant_and_each_peer_once() -> None:
    plan = bench_peers.variants(["dcnrank", "keras_rs"], ["fp32", "bf16:train.precision=bf16"])
    assert [(v.library, v.name, v.sets) for v in plan] == [
        ("dcnrank", "fp32", ()),
        ("dcnrank", "bf16", ("train.precision=bf16",)),
        ("keras_rs", "default", ()),
    ]
    with pytest.raises(ValueError, match="NAME:train.KEY=VALUE"):
        bench_peers.parse_variant("bf16:precision")


def test_a_stamped_venv_is_reused_without_running_pip(tmp_path: Path, monkeypatch) -> None:
    library = bench_peers.LIBRARIES["deepctr"]
    python = tmp_path / "deepctr" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.touch()
    (tmp_path / "deepctr" / bench_peers.STAMP).write_text(json.dumps([list(s) for s in library.installs]))
    monkeypatch.setattr(bench_peers.subprocess, "run", lambda *a, **k: pytest.fail("pip ran"))
    assert bench_peers.ensure_venv(library, peers=tmp_path) == python


def test_a_failed_install_is_a_setup_error_with_its_last_line(tmp_path: Path, monkeypatch) -> None:
    library = bench_peers.Library("broken", "run_broken.py", (("no-such-package==0",),))
    python = tmp_path / "broken" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.touch()

    def fake_run(step, stdout, stderr):  # noqa: ANN001, ANN202 - subprocess.run's shape
        stdout.write("ERROR: No matching distribution found for no-such-package==0\n")
        return subprocess.CompletedProcess(step, 1)

    monkeypatch.setattr(bench_peers.subprocess, "run", fake_run)
    with pytest.raises(bench_peers.SetupError, match="No matching distribution found"):
        bench_peers.ensure_venv(library, peers=tmp_path, log=lambda _: None)
    assert not (tmp_path / "broken" / bench_peers.STAMP).exists()


def test_matmul_peak_times_both_kinds_of_product() -> None:
    import torch

    for kind in ("mm", "linear"):
        assert matmul_peak.product_gflops(torch.float32, kind, shape=(8, 8, 8), seconds=0.0) > 0
    with pytest.raises(ValueError, match="`kind` must be 'mm' or 'linear'"):
        matmul_peak.product_gflops(torch.float32, "bmm", shape=(8, 8, 8), seconds=0.0)


def test_threads_must_fit_the_machine() -> None:
    assert len(bench_peers.cpu_set(1)) == 1
    with pytest.raises(ValueError, match="--threads must be between 1 and"):
        bench_peers.cpu_set(10_000)
