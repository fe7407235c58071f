"""`dcnrank train`, `evaluate` and `recommend` end to end through the real entry point."""

import json
import signal
import subprocess
import sys

import pytest
from conftest import write_tiny_movielens

from dcnrank.bundle import load
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
    proc = run_cli(
        "train", *TINY_MODEL, "train.epochs=2", "data.split=random", "--data-dir", data, "--out", out, "--json"
    )
    assert proc.returncode == 0, proc.stderr
    return out, data, json.loads(proc.stdout)


def test_train_writes_a_bundle_with_resolved_config_and_metrics(tiny_bundle):
    out, data, summary = tiny_bundle
    bundle = load(out)
    config = TrainRunConfig.from_dict(bundle.config.train)
    assert config.model.deep_units == (4,) and config.train.epochs == 2
    overrides = [*TINY_MODEL, "train.epochs=2", "data.split=random", f"data.data_dir={json.dumps(str(data))}"]
    assert config == load_recipe(overrides)
    assert config.model.user_history and config.data.validation == "random"  # the recipe's, not the seed's
    assert config.data.data_dir == str(data)
    # 6 ratings: random split 5 train / 1 test; validation holds out max(1, round(0.5)) = 1.
    assert bundle.metrics["data"]["n_fit"] == 4 and bundle.metrics["validation"]["rows"] == 1
    assert summary["bundle"] == str(out)
    assert summary["test"] == bundle.metrics["test"] and summary["test"]["rows"] == 1
    assert 1 <= summary["best_epoch"] <= summary["epochs_run"] <= 2
    assert summary["parameters"] == bundle.metrics["parameters"] > 0


def test_evaluate_reproduces_the_training_test_metrics(tiny_bundle):
    out, _, summary = tiny_bundle
    proc = run_cli("evaluate", "--model", out, "--json")  # split, seed and data dir from the bundle
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == summary["test"]


def test_recommend_unknown_user_notice_and_json(tiny_bundle):
    out, data, _ = tiny_bundle
    proc = run_cli("recommend", "--model", out, "--user", 42, "--top", 3, "--data-dir", data, "--json")
    assert proc.returncode == 0, proc.stderr
    assert "notice: user 42 is not in the model's vocabulary and not in u.user" in proc.stderr
    result = json.loads(proc.stdout)
    assert result["user_id"] == 42 and result["candidates"] == 4
    assert [item["rank"] for item in result["items"]] == [1, 2, 3]
    scores = [item["predicted_rating"] for item in result["items"]]
    assert scores == sorted(scores, reverse=True)


def test_recommend_invalid_user_exits_2(tiny_bundle):
    proc = run_cli("recommend", "--model", tiny_bundle[0], "--user", "abc")
    assert proc.returncode == 2
    assert "argument --user: must be a positive integer user id, got 'abc'" in proc.stderr


@pytest.mark.parametrize("user", ["abc", "0", "-3", "1.5"])
def test_user_id_type(user):
    import argparse

    from dcnrank.cli.recommend import user_id

    with pytest.raises(argparse.ArgumentTypeError, match=rf"must be a positive integer user id, got '{user}'"):
        user_id(user)
    assert user_id("42") == 42


def test_train_config_errors_exit_2(tmp_path):
    proc = run_cli("train", "train.learning_rat=0.1", "model.deep_units=[0]", "--out", tmp_path / "b")
    assert proc.returncode == 2
    assert "invalid configuration (2 errors)" in proc.stderr
    assert "unknown key 'train.learning_rat' (did you mean 'train.learning_rate'?)" in proc.stderr
    assert "model.deep_units: must hold layer widths ≥ 1. Received: [0]" in proc.stderr
    assert not (tmp_path / "b").exists()


def test_real_movielens_train_evaluate_recommend(movielens_dir, movielens_ratings, tmp_path):
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
    assert bundle.metrics["parameters"] == 220_993  # the seed's DCN on train-split vocabularies
    test = bundle.metrics["test"]
    assert test["rows"] == 20_000 and test["users"] == 943

    proc = run_cli("evaluate", "--model", out, "--data-dir", movielens_dir)
    assert proc.returncode == 0, proc.stderr
    assert f"{test['rmse']:.4f}" in proc.stdout and f"{test['ndcg@10']:.4f}" in proc.stdout

    proc = run_cli("recommend", "--model", out, "--user", 42, "--data-dir", movielens_dir)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["rank", "movie", "title", "predicted"] and len(lines) == 11
    rated = set(movielens_ratings.movie_id[movielens_ratings.user_id == 42].tolist())
    titles = dict(zip(movielens_ratings.movie_id.tolist(), movielens_ratings.title.tolist(), strict=True))
    for rank, line in enumerate(lines[1:], start=1):
        fields = line.split()
        movie = int(fields[1])
        assert int(fields[0]) == rank and movie not in rated
        assert titles[movie] in line


def test_help_shows_dataset_runs_and_the_recipe_defaults():
    proc = run_cli("train", "--help")
    assert proc.returncode == 0
    assert "dcnrank train --dataset movielens-100k --out runs/ml" in proc.stdout
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
    # SIGKILL once the first checkpoint exists, rerun with --resume: same test metrics as one clean run.
    args = [
        "train", "--config", "configs/seed_dcn.toml", "train.epochs=3", "data.max_train_rows=4096",
        "train.batch_size=64", "train.checkpoint_every=1", "--data-dir", movielens_dir, "--quiet",
    ]  # fmt: skip
    checkpoints = tmp_path / "checkpoints"
    command = [sys.executable, "-m", "dcnrank", *map(str, args), "--checkpoint-dir", str(checkpoints)]
    victim = subprocess.Popen([*command, "--out", str(tmp_path / "killed")])
    try:
        while not (checkpoints / "checkpoint.json").exists() and victim.poll() is None:
            pass  # busy-wait: the run must die soon after its first checkpoint, mid-training
        assert victim.poll() is None, "the run ended before it could be killed"
        victim.send_signal(signal.SIGKILL)
    finally:
        victim.wait(timeout=60)
    assert victim.returncode == -signal.SIGKILL and not (tmp_path / "killed").exists()

    resumed = subprocess.run([*command, "--resume", "--out", str(tmp_path / "resumed")], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    clean = run_cli(*args, "--out", tmp_path / "clean")
    assert clean.returncode == 0, clean.stderr
    got, expected = load(tmp_path / "resumed").metrics, load(tmp_path / "clean").metrics
    assert len(got["history"]) == len(expected["history"]) == 3
    for key in ("rmse", "mae", "ndcg@10", "map@10"):
        assert got["test"][key] == pytest.approx(expected["test"][key], abs=1e-6)
    assert [e["loss"] for e in got["history"]] == pytest.approx([e["loss"] for e in expected["history"]], abs=1e-9)
