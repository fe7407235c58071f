"""`dcnrank train --data --spec` and `dcnrank predict` end to end, and the worked example's scripts."""

import json
import runpy
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from dcnrank.bundle import load
from dcnrank.cli.main import main
from dcnrank.config import TrainRunConfig
from dcnrank.data.holdout import held_out
from dcnrank.data.sources.table_readers import read_table

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
HELD_OUT = int(held_out(0, 3000, 0.1, seed=0).sum())  # the recipe's data.validation="random" of 3,000 rows
# A small cross-only model; without the deep network, 13 × 16 bucket embeddings 4 wide learn
# nothing from 2,700 rows in two epochs (validation AUC 0.497 with them, 0.644 without)
QUICK = ["model.structure=cross_only", "model.embedding_dim=4", "model.numeric_buckets=0", "train.epochs=2",
         "train.batch_size=256"]  # fmt: skip


def run(*args, cwd=None):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def criteo_like(tmp_path_factory):
    """3,000 training and 1,000 test rows from the worked example's generator, as CSV and Parquet."""
    root = tmp_path_factory.mktemp("criteo")
    train = run(EXAMPLES / "make_criteo_like.py", "--rows", 3000, "--out", root / "train.csv")
    assert train.returncode == 0, train.stderr
    assert "wrote 3,000 rows × 40 columns" in train.stdout and "the true click probabilities score AUC" in train.stdout
    generator = runpy.run_path(str(EXAMPLES / "make_criteo_like.py"))  # the script ran above; now its main only
    assert generator["main"](["--rows", "1000", "--sample-seed", "1", "--out", str(root / "test.parquet")]) == 0
    return root


@pytest.fixture(scope="module")
def trained(criteo_like):
    out = criteo_like / "bundle"
    proc = run("-m", "dcnrank", "train", "--data", criteo_like / "train.csv", "--spec", EXAMPLES / "criteo_like.toml",
               *QUICK, "--out", out, "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return out, json.loads(proc.stdout)


def test_generator_writes_criteo_layout(criteo_like):
    table = read_table(criteo_like / "train.csv")
    assert table.column_names == ["label", *(f"I{i}" for i in range(1, 14)), *(f"C{i}" for i in range(1, 27))]
    assert set(table.column("label").to_pylist()) == {"0", "1"}
    assert table.column("C12").null_count > 0 and table.column("I1").null_count > 0
    assert len(pq.read_table(criteo_like / "test.parquet")) == 1000


def test_train_writes_a_table_bundle_with_spec_and_config(trained, criteo_like):
    out, summary = trained
    bundle = load(out)
    assert bundle.spec.task == "binary" and bundle.spec.group == "C1" and len(bundle.spec.columns) == 39
    config = TrainRunConfig.from_dict(bundle.train)
    assert config.model.structure == "cross_only" and config.train.epochs == 2
    # without --config, the recipe's settings (not the seed's), its MovieLens-only keys at their defaults
    assert config.train.learning_rate == 0.002 and config.train.weight_decay == 0.02 and config.data.patience == 4
    assert config.data.split is None and config.data.data_dir is None  # a --data run names no dataset split
    assert summary["bundle"] == str(out) and summary["task"] == "binary"
    assert summary["validation"] == bundle.metrics["validation"] and summary["validation"]["rows"] == HELD_OUT
    assert 0.5 < summary["validation"]["auc"] <= 1 and summary["validation"]["logloss"] > 0
    assert 1 <= summary["best_epoch"] <= summary["epochs_run"] <= 2
    assert bundle.metrics["data"]["n_fit"] == 3000 - HELD_OUT and bundle.metrics["data"]["table_sizes"]["C3"] == 4097


def test_train_prints_metrics_as_text(criteo_like, tmp_path, capsys):
    # in-process: `train --data` through the entry point runs in the `trained` fixture
    assert main(["train", "--data", str(criteo_like / "train.csv"), "--spec", str(EXAMPLES / "criteo_like.toml"),
                 *QUICK, "train.epochs=1", "--out", str(tmp_path / "b"), "--quiet"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "best epoch 1 of 1 run" in printed
    assert f"validation ({HELD_OUT} held-out rows): AUC 0." in printed and "GAUC" in printed
    assert f"saved bundle {tmp_path / 'b'}" in printed


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_predict_writes_predictions_and_measures_them(trained, criteo_like, tmp_path, suffix):
    out, _ = trained
    preds = tmp_path / f"preds.{suffix}"
    proc = run("-m", "dcnrank", "predict", "--model", out, "--data", criteo_like / "test.parquet", "--out", preds,
               "--keep", "C1", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["rows"] == 1000 and summary["metrics"]["rows"] == 1000 and 0 <= summary["metrics"]["auc"] <= 1
    table = read_table(preds)
    assert table.column_names == ["C1", "prediction"] and table.num_rows == 1000
    expected = load(out).predict(criteo_like / "test.parquet").tolist()
    assert [float(v) for v in table.column("prediction").to_pylist()] == pytest.approx(expected, rel=1e-6)


def test_predict_text_output_without_labels(trained, criteo_like, tmp_path, capsys):
    out, _ = trained
    unlabelled = tmp_path / "u.parquet"
    pq.write_table(pq.read_table(criteo_like / "test.parquet").drop(["label"]), unlabelled)
    assert main(["predict", "--model", str(out), "--data", str(unlabelled), "--out", str(tmp_path / "p.csv")]) == 0
    printed = capsys.readouterr().out
    assert f"wrote 1,000 predictions to {tmp_path / 'p.csv'}" in printed and "against the labels" not in printed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--data", "x.csv", "--out", "o"], r"--data needs --spec: a table is trained with its feature spec"),
        (["train", "--spec", "s.toml", "--out", "o"], r"--spec needs --data"),
        (
            ["train", "--data", "x.csv", "--spec", "s.toml", "--data-dir", "d", "--out", "o"],
            r"--data-dir goes with a dataset run; --data FILE is split by data.validation_fraction",
        ),
        (["train", "--data", "x.csv", "--spec", "nope.toml", "--out", "o"], r"feature spec not found"),
        (["predict", "--model", "nope", "--data", "x.csv", "--out", "p.csv"], r"nope: bundle folder not found"),
    ],
)
def test_cli_errors_exit_2_with_one_line(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dcnrank {args[0]}: error: ")
    assert __import__("re").search(message, err), err


def test_cli_reports_bad_data_and_settings(criteo_like, tmp_path, capsys, trained):
    spec = tmp_path / "spec.toml"
    spec.write_text((EXAMPLES / "criteo_like.toml").read_text().replace('C26 = "categorical"', 'C_26 = "categorical"'))
    assert (
        main(["train", "--data", str(criteo_like / "train.csv"), "--spec", str(spec), "--out", str(tmp_path / "b")])
        == 2
    )
    assert (
        "train.csv: missing column 'C_26' (did you mean 'C26'?); the table has 40 columns: label, I1"
        in capsys.readouterr().err
    )
    assert main(["train", "--data", str(criteo_like / "train.csv"), "--spec", str(EXAMPLES / "criteo_like.toml"),
                 "data.split=u1", "--out", str(tmp_path / "b")]) == 2  # fmt: skip
    assert "data.split: applies to --dataset runs (the dataset's split and folder)" in capsys.readouterr().err
    assert (
        main(["predict", "--model", str(trained[0]), "--data", str(criteo_like / "test.parquet"), "--out", "p.json"])
        == 2
    )
    assert "cannot tell the table format of 'p.json'" in capsys.readouterr().err


def test_show_errors_prints_one_message_per_kind():
    proc = run(EXAMPLES / "show_errors.py")
    assert proc.returncode == 0, proc.stderr
    for fragment in [
        "unknown key 'lable' (did you mean 'label'?)",
        "unknown column type 'categorial'; must be one of categorical, numeric, multi_hot "
        "(did you mean 'categorical'?)",
        "unknown key 'columns.I1.log' (did you mean 'columns.I1.log1p'?)",
        "columns.C2.min_count: must be ≥ 1. Received: 0",
        "data.csv: missing column 'I1' (did you mean 'I_1'?)",
        "data.csv: column 'I1' must hold numbers. Received 2 rows: I1[1]='lots', I1[2]='-'",
        "column 'I1' has log1p = true, so its values must be > -1. Received 1 row: I1[1]=-1.0",
        "labels[1]=2.0, labels[3]=-1.0",
        "label column 'label' must have a value in every row. Received 1 row: label[1]=None",
        "data.csv: 1 line with the wrong number of cells: line 3: 3 cells, expected 4: '0,4,b'",
        "column 'C1' is categorical and must hold ints or strings, not fractions. Received 1 row: C1[1]=2.5",
        "column 'tags' is multi_hot and must hold text separated by '|' or lists. Received: type double",
        "data.split: applies to --dataset runs (the dataset's split and folder)",
    ]:
        assert fragment in proc.stdout, fragment
