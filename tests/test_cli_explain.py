"""`dcnrank explain` end to end, and the heatmap `dcnrank train --data` writes into the bundle."""

import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from dcnrank.bundle import load, save
from dcnrank.bundle.errors import BundleError
from dcnrank.cli.main import main
from dcnrank.data.encoding.table_encoder import TableEncoder
from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec
from dcnrank.data.streaming.table_writer import write_table
from dcnrank.models import DCNConfig
from dcnrank.models.table_inputs import build_table_dcn

SPEC = """task = "regression"
label = "y"
[columns]
x = "numeric"
z = "numeric"
w = "numeric"
a = "categorical"
b = "categorical"
"""
# One full-rank cross layer and no levers (no bias terms, buckets, embedding penalty or
# learning-rate decay): the test reads that layer's learned matrix.
QUICK = ["model.embedding_dim=2", "model.num_cross_layers=1", "model.projection_dim=none", "model.dropout=0",
         "model.use_bias_terms=false", "model.numeric_buckets=0", "model.embedding_l2=0", "train.lr_decay=1",
         "train.epochs=8", "train.batch_size=64", "--quiet"]  # fmt: skip


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "dcnrank", *map(str, args)], capture_output=True, text=True, timeout=600
    )


def run_main(capsys, *args) -> tuple[int, str, str]:
    """`dcnrank ARGS` in this process (exit code, stdout, stderr): the commands' output without an
    interpreter's start-up each; the entry point itself runs in `run_cli` calls here."""
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """2,000 rows whose label is mostly the cross x × z (plus a main effect of x and noise);
    w, a and b are noise. A cross_only model is trained on it through the CLI."""
    root = tmp_path_factory.mktemp("planted")
    rng = np.random.default_rng(0)
    x, z, w = rng.normal(size=(3, 2000))
    y = 3.0 * x * z + 0.5 * x + 0.1 * rng.normal(size=2000)
    a, b = rng.integers(0, 5, size=(2, 2000))
    write_table(pa.table({"y": y, "x": x, "z": z, "w": w, "a": a, "b": b}), root / "t.csv")
    (root / "t.toml").write_text(SPEC)
    proc = run_cli("train", "--data", root / "t.csv", "--spec", root / "t.toml", "model.structure=cross_only",
                   *QUICK, "--out", root / "bundle")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return root


def test_train_writes_the_heatmap_into_the_bundle(planted):
    assert (planted / "bundle" / "interactions.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    load(planted / "bundle")  # the extra file does not upset the loader


def test_explain_finds_the_planted_cross(planted, tmp_path):
    proc = run_cli("explain", "--model", planted / "bundle", "--out", tmp_path / "h.png")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"cross layer 0 (FeatureCross) of {planted / 'bundle'}: 5 features, x0 10 wide"
    assert lines[2].split()[:4] == ["1.", "x", "×", "z"]
    assert len(lines) == 8 and lines[-1] == f"wrote heatmap {tmp_path / 'h.png'}"
    assert (tmp_path / "h.png").is_file()


def test_explain_json(planted, capsys):
    code, out, err = run_main(capsys, "explain", "--model", planted / "bundle", "--json", "--top", "2")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["labels"] == ["a", "b", "x", "z", "w"] and summary["block_sizes"] == [2] * 5
    assert [pair["features"] for pair in summary["top_pairs"]][0] == ["x", "z"] and len(summary["top_pairs"]) == 2
    matrix = np.array(summary["matrix"])
    x, z = summary["labels"].index("x"), summary["labels"].index("z")
    assert summary["top_pairs"][0]["weight"] == pytest.approx(matrix[x, z] + matrix[z, x])
    assert summary["heatmap"] == str(planted / "bundle" / "interactions.png")


def test_explain_a_second_layer(tmp_path, capsys):
    config = DCNConfig(structure="stacked", embedding_dim=2, deep_units=(4,), num_cross_layers=2)
    spec = FeatureSpec((CategoricalColumn("item_id"), CategoricalColumn("user_id")), label="y", task="binary")
    encoder = TableEncoder.fit(spec, {"item_id": [10, 20], "user_id": [1, 2], "y": [0, 1]})
    folder = save(build_table_dcn(config, spec, encoder.table_sizes), tmp_path / "b", model_config=config,
                  encoder=encoder)  # fmt: skip
    code, out, err = run_main(capsys, "explain", "--model", folder, "--layer", "1", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["labels"] == ["item_id", "user_id"] and summary["layer"] == 1
    assert (
        summary["heatmap"] == str(folder / "interactions_layer1.png") and (folder / "interactions_layer1.png").is_file()
    )


def test_deep_only_has_no_heatmap_and_explain_says_why(planted, tmp_path, capsys):
    out = tmp_path / "deep"
    code, _, err = run_main(capsys, "train", "--data", planted / "t.csv", "--spec", planted / "t.toml",
                            "model.structure=deep_only", "model.deep_units=[4]", "train.epochs=1", "--quiet",
                            "--out", out)  # fmt: skip
    assert code == 0, err
    assert not (out / "interactions.png").exists()
    proc = run_cli("explain", "--model", out)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (
        "dcnrank explain: error: `model` has no cross network to explain (structure='deep_only'); "
        "train a stacked, parallel or cross_only model\n"
    )


def test_explain_errors_exit_2(planted, tmp_path, capsys):
    code, _, err = run_main(capsys, "explain", "--model", planted / "bundle", "--layer", "3")
    assert code == 2
    assert "`layer` must be an int from 0 to 0, one of the model's 1 cross layers. Received: layer=3" in err
    code, _, err = run_main(capsys, "explain", "--model", tmp_path / "nowhere")
    assert code == 2 and "bundle folder not found" in err


def test_load_rejects_an_unknown_format(tmp_path):
    (tmp_path / "config.json").write_text('{"format": "other"}')
    with pytest.raises(BundleError, match=r"`format` must be 'dcnrank\.bundle'\. Received: format='other'"):
        load(tmp_path)
