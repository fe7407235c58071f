"""`dcnrank toy` end to end through the real entry point."""

import json
import subprocess
import sys

import matplotlib.image


def run_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "dcnrank", *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


def test_toy_writes_json_and_png(tmp_path):
    proc = run_cli("toy", "--epochs", "1", "--out", str(tmp_path), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "Cross Network" in proc.stdout and "166,401" in proc.stdout
    report = json.loads((tmp_path / "toy.json").read_text())
    assert report["experiment"] == "toy"
    assert report["config"]["train"]["epochs"] == 1
    assert report["models"]["cross"]["params"] == 16
    assert report["models"]["deep"]["params"] == 166_401
    assert len(report["models"]["cross"]["rmse"]) == 1
    assert report["models"]["cross"]["rmse_mean"] == report["models"]["cross"]["rmse"][0]
    assert report["seconds"] > 0
    image = matplotlib.image.imread(tmp_path / "toy_cross_weights.png")
    assert image.shape[0] > 100


def test_bad_arguments_exit_2():
    proc = run_cli("toy", "--epochs", "0")
    assert proc.returncode == 2
    assert "must be a positive integer" in proc.stderr
    assert run_cli("nope").returncode == 2
