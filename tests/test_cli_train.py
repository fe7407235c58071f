"""`dcnrank train`, `evaluate` and `recommend` end to end through the real entry point."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import write_tiny_movielens
from safetensors.torch import load_file

from dcnrank.bundle import load
from dcnrank.cli.main import main
from dcnrank.config import TrainRunConfig
from dcnrank.experiments.recipe import load_recipe

TINY_MODEL = ["model.embedding_dim=2", "model.deep_units=[4]", "train.batch_size=2"]


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "dcnrank", *map(str, args)], capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    """A bundle trained (2 epochs) on the tiny MovieLens files, through `dcnrank train --json`:
    the recipe (the default without --config) on a random split, as the tiny data has no u1 files."""
    root = tmp_path_factory.mktemp("tiny")
    data = write_tiny_movielens(root / "ml-100k")
    out = root / "bundle"
    proc = run_cli("train", *TINY_MODEL, "train.epochs=2", "--split", "random", "--data-dir", data, "--out", out,
                   "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return out, data, json.loads(proc.stdout)


def test_train_writes_a_bundle_with_resolved_config_and_metrics(tiny_bundle):
    out, data, summary = tiny_bundle
    bundle = load(out)
    config = TrainRunConfig.from_dict(bundle.train)
    assert config.model.deep_units == (4,) and config.train.epochs == 2
    overrides = [*TINY_MODEL, "train.epochs=2", "data.split=random", f"data.data_dir={json.dumps(str(data))}"]
    assert config == load_recipe(overrides)
    assert config.model.user_history and config.data.validation == "random"  # the recipe's, not the seed's
    assert bundle.metrics["data"]["dataset"] == "movielens-100k" and bundle.metrics["data"]["split"] == "random"
    assert summary["bundle"] == str(out) and summary["dataset"] == "movielens-100k"
    # 6 ratings: a random split of 5 training rows (one held out to validate) and 1 test row
    assert bundle.metrics["data"]["n_fit"] + bundle.metrics["validation"]["rows"] == 5
    assert summary["test"]["rows"] == 1 and set(summary["test"]) >= {"rmse", "mae", "ndcg@10", "users"}
    assert 1 <= summary["best_epoch"] <= summary["epochs_run"] <= 2
    assert summary["parameters"] == bundle.metrics["parameters"] == sum(p.numel() for p in bundle.model.parameters())


def test_evaluate_reproduces_the_training_test_metrics(tiny_bundle, capsys):
    out, data, summary = tiny_bundle
    # in-process: `evaluate` through the entry point runs in test_real_movielens_train_evaluate_recommend
    assert main(["evaluate", "--model", str(out), "--json"]) == 0  # dataset, split, seed and data dir from the bundle
    evaluated = json.loads(capsys.readouterr().out)
    assert {key: evaluated[key] for key in summary["test"]} == summary["test"]


def test_recommend_unknown_user_notice_and_json(tiny_bundle):
    out, _, _ = tiny_bundle
    proc = run_cli("recommend", "--model", out, "--user", 42, "--top", 3, "--json")
    assert proc.returncode == 0, proc.stderr
    assert "notice: user 42 is not in the model's vocabulary: scored through the out-of-vocabulary row" in proc.stderr
    result = json.loads(proc.stdout)
    assert result["user_id"] == 42 and result["unknown"] == {"user_id": [42]}
    assert [item["rank"] for item in result["items"]] == list(range(1, len(result["items"]) + 1))
    scores = [item["score"] for item in result["items"]]
    assert scores == sorted(scores, reverse=True) and set(result["items"][0]["item"]) == {
        "movie_id", "genres", "release_year"
    }  # fmt: skip


def test_recommend_invalid_user_exits_2(tiny_bundle, capsys):
    # in-process: `recommend` through the entry point runs in the tests above and below
    assert main(["recommend", "--model", str(tiny_bundle[0]), "--user", "abc"]) == 2
    assert "--user must be an integer: the column 'user_id' holds ints. Received: 'abc'" in capsys.readouterr().err


def test_train_config_errors_exit_2(tmp_path):
    proc = run_cli("train", "train.learning_rat=0.1", "model.deep_units=[0]", "--out", tmp_path / "b")
    assert proc.returncode == 2
    assert "invalid configuration (2 errors)" in proc.stderr
    assert "unknown key 'train.learning_rat' (did you mean 'train.learning_rate'?)" in proc.stderr
    assert "model.deep_units: must hold layer widths ≥ 1. Received: [0]" in proc.stderr
    assert not (tmp_path / "b").exists()


def test_real_movielens_train_evaluate_recommend(movielens_dir, movielens_ratings, tmp_path, capsys):
    out = tmp_path / "dcn"
    proc = run_cli(
        "train", "--config", "configs/seed_dcn.toml", "train.epochs=1", "data.max_train_rows=4096",
        "--data-dir", movielens_dir, "--out", out, "--quiet",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # --quiet
    assert "best epoch 1 of 1 run" in proc.stdout and "saved bundle" in proc.stdout
    bundle = load(out)
    assert bundle.metrics["data"]["n_fit"] + bundle.metrics["validation"]["rows"] == 4096
    assert bundle.metrics["parameters"] == sum(p.numel() for p in bundle.model.parameters())
    assert "test (movielens-100k, split random, 20,000 rows)" in proc.stdout

    proc = run_cli("evaluate", "--model", out, "--data-dir", movielens_dir, "--json")
    assert proc.returncode == 0, proc.stderr
    test = json.loads(proc.stdout)
    assert test["rows"] == 20_000 and test["users"] == 943
    capsys.readouterr()  # the text form in-process (the entry point ran just above)
    assert main(["evaluate", "--model", str(out), "--data-dir", str(movielens_dir)]) == 0
    assert f"{test['rmse']:.4f}" in capsys.readouterr().out

    proc = run_cli("recommend", "--model", out, "--user", 42)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["rank", "score", "movie_id", "genres", "release_year"] and len(lines) == 11
    assert [int(line.split()[0]) for line in lines[1:]] == list(range(1, 11))
    fit = bundle.catalog.interactions  # what user 42 rated in the fit rows is never recommended again
    user = int(bundle.encoder.vocabularies["user_id"].encode(np.array([42]))[0])
    rated = set(fit.members[fit.indptr[user] : fit.indptr[user + 1]].tolist())
    recommended = bundle.encoder.vocabularies["movie_id"].encode(np.array([int(line.split()[2]) for line in lines[1:]]))
    assert rated and not rated & set(recommended.tolist())


def test_help_shows_dataset_runs_and_the_recipe_defaults():
    proc = run_cli("train", "--help")
    assert proc.returncode == 0
    assert "dcnrank train --out runs/dcn                   # the recipe (configs/movielens_100k.toml)" in proc.stdout
    assert "dcnrank train --dataset movielens-1m" in proc.stdout
    assert "without --config, every run starts from the recipe" in proc.stdout
    assert "--dataset {movielens-100k,movielens-1m,movielens-10m,movielens-latest,movielens-latest-small}" in (
        " ".join(proc.stdout.split())
    )


def test_resume_without_checkpoint_dir_exits_2(tmp_path):
    proc = run_cli("train", "--resume", "--out", tmp_path / "b")
    assert proc.returncode == 2
    assert "--resume needs --checkpoint-dir" in proc.stderr


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_result(movielens_dir, tmp_path):
    # SIGKILL once the first checkpoint exists, rerun with --resume: same weights, losses and test
    # metrics (those `train --json` reports, as `evaluate` computes them) as one clean run.
    args = [
        "train", "--config", "configs/seed_dcn.toml", "train.epochs=3", "data.max_train_rows=4096",
        "train.batch_size=64", "train.checkpoint_every=1", "--data-dir", movielens_dir, "--quiet",
    ]  # fmt: skip
    checkpoints = tmp_path / "checkpoints"
    command = [sys.executable, "-m", "dcnrank", *map(str, args), "--checkpoint-dir", str(checkpoints)]
    victim = subprocess.Popen([*command, "--out", str(tmp_path / "killed")])
    try:
        while not (checkpoints / "checkpoint.json").exists() and victim.poll() is None:
            time.sleep(0.005)  # the run must die soon after its first checkpoint, mid-training
        assert victim.poll() is None, "the run ended before it could be killed"
        victim.send_signal(signal.SIGKILL)
    finally:
        victim.wait(timeout=60)
    assert victim.returncode == -signal.SIGKILL and not (tmp_path / "killed").exists()

    resumed = subprocess.run([*command, "--resume", "--out", str(tmp_path / "resumed"), "--json"], capture_output=True,
                             text=True)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    clean = run_cli(*args, "--out", tmp_path / "clean", "--json")
    assert clean.returncode == 0, clean.stderr
    got, expected = load(tmp_path / "resumed").metrics, load(tmp_path / "clean").metrics
    assert len(got["history"]) == len(expected["history"]) == 3
    tests = [json.loads(proc.stdout)["test"] for proc in (resumed, clean)]
    for key in ("rmse", "mae", "ndcg@10", "map@10"):
        assert tests[0][key] == pytest.approx(tests[1][key], abs=1e-6)
    assert [e["loss"] for e in got["history"]] == pytest.approx([e["loss"] for e in expected["history"]], abs=1e-9)
    weights = [load_file(tmp_path / name / "weights.safetensors") for name in ("resumed", "clean")]
    assert weights[0].keys() == weights[1].keys()
    for name, tensor in weights[0].items():
        torch.testing.assert_close(tensor, weights[1][name], rtol=1e-5, atol=1e-6, msg=name)
