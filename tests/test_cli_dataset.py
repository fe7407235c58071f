"""`dcnrank train` on a dataset (`--dataset`, or MovieLens 100K by default), `dcnrank evaluate` of its
bundles, and the fold CSVs, through the real entry point."""

import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_tiny_movielens

from dcnrank.bundle import load
from dcnrank.cli.main import main
from dcnrank.cli.train import run_config
from dcnrank.config import DataConfig, TrainRunConfig
from dcnrank.data.holdout import held_out
from dcnrank.data.sources import load_movielens_source
from dcnrank.experiments.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
# one quick epoch of a small model; every other setting is the recipe's
HELD_OUT_OF_U1 = int(held_out(0, 80_000, 0.1, seed=0).sum())  # u1.base's validation slice (random policy)
TINY = ["train.epochs=1", "model.embedding_dim=4", "model.deep_units=[8]", "model.projection_dim=4",
        "train.batch_size=1024"]  # fmt: skip


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "dcnrank", *map(str, args)], capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def dataset_bundle(movielens_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("dataset") / "bundle"
    proc = run_cli("train", "--dataset", "movielens-100k", "--split", "u1", *TINY, "--data-dir", movielens_dir,
                   "--out", out, "--json", "--quiet")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return out, json.loads(proc.stdout)


def test_train_dataset_uses_the_recipe_and_the_split(dataset_bundle, movielens_dir):
    out, summary = dataset_bundle
    bundle = load(out)
    assert bundle.spec == load_movielens_source(movielens_dir).spec
    config = TrainRunConfig.from_dict(bundle.train)
    assert config == run_config(None, [*TINY, "data.split=u1", f"data.data_dir={json.dumps(str(movielens_dir))}"])
    assert config.train.learning_rate == 0.002 and config.data.patience == 4 and config.data.split == "u1"
    assert (bundle.metrics["data"]["dataset"], bundle.metrics["data"]["split"]) == ("movielens-100k", "u1")
    # u1.base: 80,000 rows, 10% (8,000) held out for early stopping
    assert bundle.metrics["data"]["rows"] == 80_000 and bundle.metrics["validation"]["rows"] == HELD_OUT_OF_U1
    assert summary["dataset"] == "movielens-100k" and summary["split"] == "u1"
    test = summary["test"]
    assert test["rows"] == 20_000 and test["users"] == 459  # u1.test holds 459 users' ratings
    assert 0.5 < test["rmse"] < 1.5 and 0 < test["ndcg@10"] <= 1


def test_evaluate_dataset_reproduces_the_training_test_metrics(dataset_bundle, movielens_dir, capsys):
    out, summary = dataset_bundle
    proc = run_cli("evaluate", "--model", out, "--dataset", "movielens-100k", "--split", "u1",
                   "--data-dir", movielens_dir, "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout)
    assert metrics == {"dataset": "movielens-100k", "split": "u1", "seed": 0, **summary["test"]}
    # the other forms in-process (the entry point ran above): the same command, without an interpreter's start-up
    assert main(["evaluate", "--model", str(out), "--dataset", "movielens-100k", "--data-dir", str(movielens_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()  # u1 is 100K's default split
    assert lines[0] == f"{out}: movielens-100k split u1 (seed 0), 20,000 test rows, 459 users"
    assert f"  rmse          {metrics['rmse']:.4f}" in lines and f"  ndcg@10       {metrics['ndcg@10']:.4f}" in lines
    # without --dataset: the dataset, split and folder the bundle records
    assert main(["evaluate", "--model", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == metrics


def test_fold_csvs_train_and_evaluate(movielens_dir, tmp_path, capsys):
    folds = tmp_path / "folds"
    # the script's main in this process first; as a script (its own interpreter) for the refusal below
    to_csv = runpy.run_path(str(EXAMPLES / "movielens_to_csv.py"))["main"]
    assert to_csv(["--data-dir", str(movielens_dir), "--out", str(folds)]) == 0
    assert f"wrote 80,000 ratings × 11 columns to {folds / 'ml100k_u1_base.csv'}" in capsys.readouterr().out
    assert sorted(p.name for p in folds.iterdir()) == sorted(
        f"ml100k_u{n}_{part}.csv" for n in range(1, 6) for part in ("base", "test")
    )
    again = subprocess.run([sys.executable, EXAMPLES / "movielens_to_csv.py", "--data-dir", movielens_dir,
                            "--out", folds], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert again.returncode == 2 and "already exist(s); pass --replace" in again.stderr
    out = tmp_path / "bundle"
    proc = run_cli("train", "--data", folds / "ml100k_u1_base.csv", "--spec", EXAMPLES / "movielens_table.toml",
                   *TINY, "--out", out, "--quiet")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"validation ({HELD_OUT_OF_U1:,} held-out rows): RMSE" in proc.stdout
    # in-process: `evaluate` through the entry point runs in the test above
    assert main(["evaluate", "--model", str(out), "--data", str(folds / "ml100k_u1_test.csv"), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["data"] == str(folds / "ml100k_u1_test.csv")
    assert metrics["rows"] == 20_000 and metrics["users"] == 459 and 0.5 < metrics["rmse"] < 1.5


def write_tiny_1m(folder):
    folder.mkdir(parents=True)
    (folder / "ratings.dat").write_text("".join(f"{1 + i % 3}::{1 + i % 4}::{1 + i % 5}::{i}\n" for i in range(40)))
    (folder / "movies.dat").write_text("".join(f"{m}::Movie {m} (199{m})::Drama\n" for m in range(1, 5)))
    (folder / "users.dat").write_text("".join(f"{u}::F::25::{u}::0000{u}\n" for u in range(1, 4)))
    return folder


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--dataset", "movielens-1m", "--split", "u1", "--out", "o"],
         r"`split` must be one of random, temporal for MovieLens 1M\. Received: split='u1'"),
        (["train", "--dataset", "movielens-1m", "--data", "x.csv", "--out", "o"],
         r"--dataset and --data do not go together: a run reads a MovieLens release"),
        (["train", "--dataset", "movielens-1m", "--spec", "s.toml", "--out", "o"], r"--dataset and --spec do not go"),
        (["train", "--dataset", "movielens-1m", "data.split=u2", "--out", "o"],
         r"`split` must be one of random, temporal for MovieLens 1M\. Received: split='u2'"),
        (["train", "--dataset", "movielens-1m", "data.split=u2", "--split", "random", "--out", "o"],
         r"--split and data\.split=\.\.\. set the same thing; give one\. Received: --split random"),
        (["train", "--data", "x.csv", "--spec", "s.toml", "--split", "u1", "--out", "o"],
         r"--split goes with a dataset run; --data FILE is split by data\.validation_fraction\. Received: --split u1"),
        (["train", "--data", "x.csv", "--spec", "s.toml", "--data-dir", "d", "--out", "o"],
         r"--data-dir goes with a dataset run"),
        (["evaluate", "--model", "b", "--dataset", "movielens-1m", "--data", "x.csv"], r"--dataset and --data do not"),
    ],
)  # fmt: skip
def test_cli_errors_exit_2_with_one_line(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_tiny_1m(tmp_path / "ml-1m")
    monkeypatch.setenv("DCNRANK_DATA", str(tmp_path))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dcnrank {args[0]}: error: ")
    assert __import__("re").search(message, err), err
    assert not (tmp_path / "o").exists()


def test_unknown_dataset_names_the_choices(tmp_path):
    proc = run_cli("train", "--dataset", "movielens-2m", "--out", tmp_path / "b")
    assert proc.returncode == 2
    assert "argument --dataset: invalid choice: 'movielens-2m' (choose from" in proc.stderr
    for name in ("movielens-100k", "movielens-1m", "movielens-10m", "movielens-latest", "movielens-latest-small"):
        assert name in proc.stderr


def test_train_and_evaluate_a_tiny_1m_release(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DCNRANK_DATA", str(tmp_path))
    write_tiny_1m(tmp_path / "ml-1m")
    out = tmp_path / "b"
    tiny = ["train.epochs=1", "model.embedding_dim=2", "model.deep_units=[4]", "model.projection_dim=2",
            "train.batch_size=8"]  # fmt: skip
    assert main(["train", "--dataset", "movielens-1m", "--split", "temporal", *tiny, "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "test (movielens-1m, split temporal, 8 rows): RMSE" in printed
    assert main(["evaluate", "--model", str(out), "--dataset", "movielens-1m", "--split", "temporal", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["rows"] == 8 and metrics["split"] == "temporal" and metrics["users"] == 3
    # without --dataset: the dataset and split it records
    assert main(["evaluate", "--model", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == metrics
    write_tiny_movielens(tmp_path / "ml-100k")  # without GroupLens' split files
    assert main(["evaluate", "--model", str(out), "--dataset", "movielens-100k", "--split", "u2"]) == 2
    assert "u2.base: MovieLens split file not found" in capsys.readouterr().err


def test_run_config_is_the_recipe_or_the_file():
    config = run_config(None, ["train.epochs=3"])
    recipe = load_recipe()
    assert config.model == recipe.model and config.train.learning_rate == 0.002 and config.train.epochs == 3
    assert config.train.batch_size == 256 and config.train.shuffle and config.train.weight_decay == 0.02
    assert config.model.use_bias_terms and config.model.user_history and config.model.projection_dim == 16
    assert (config.data.patience, config.data.validation_fraction, config.data.seed) == (4, 0.1, 0)
    assert (config.data.split, config.data.data_dir) == (None, None)  # the recipe holds no dataset-only key
    seed = run_config(str(ROOT / "configs" / "seed_dcn.toml"), [])
    assert seed == TrainRunConfig(data=DataConfig(split="random"))


def test_evaluate_of_an_own_table_bundle_needs_data(tmp_path, capsys):
    from dcnrank.bundle import save
    from dcnrank.config.model_config import DCNConfig
    from dcnrank.data.encoding.table_encoder import TableEncoder
    from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec
    from dcnrank.models.table_inputs import build_table_dcn

    spec = FeatureSpec((CategoricalColumn("u"),), label="y", task="regression")
    encoder, config = TableEncoder.fit(spec, {"u": [1, 2], "y": [1.0, 2.0]}), DCNConfig(structure="cross_only")
    out = save(build_table_dcn(config, spec, encoder.table_sizes), tmp_path / "b", model_config=config,
                     encoder=encoder)  # fmt: skip
    assert main(["evaluate", "--model", str(out)]) == 2
    assert "records no dataset (it was trained on your own table): evaluate it on labelled rows (--data FILE)" in (
        capsys.readouterr().err
    )
