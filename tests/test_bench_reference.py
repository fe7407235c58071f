"""Keras-RS reference benchmark: the script runs end to end and keeps the tutorial's models.

Skipped unless Keras-RS is available: either importable here, or in the
interpreter named by the environment variable ``KERAS_REFERENCE_PYTHON``
(e.g. a separate virtualenv with keras, keras-rs and jax, and no torch).
"""

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
from keras_support import reference_python

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "keras_reference.py"
VOCABULARY_SIZES = np.array([1683, 944, 3, 8, 796, 22])
EXPECTED_PARAMS = {
    "toy": {"cross": 16, "deep": 166_401},
    "movielens": {"cross": 221_953, "cross_low_rank": 192_769, "deep": 221_953},
}


def write_tiny_arrays(path: Path, train_rows: int = 2048, test_rows: int = 512) -> None:
    rng = np.random.default_rng(0)

    def mixer(rows):
        country, bananas, cookbooks = (rng.integers(n, size=rows) / n for n in (200, 24, 6))
        y = 0.1 * country + 0.4 * bananas + 0.7 * cookbooks
        y += 0.1 * country * bananas + 3.1 * bananas * cookbooks + 0.1 * cookbooks**2
        return np.stack([country, bananas, cookbooks], axis=1).astype("float32"), y

    def movielens(rows):
        x = rng.integers(0, VOCABULARY_SIZES, size=(rows, 6)).astype("int64")
        return x, rng.integers(1, 6, size=rows).astype("float32")

    toy_train_x, toy_train_y = mixer(train_rows)
    toy_test_x, toy_test_y = mixer(test_rows)
    ml_train_x, ml_train_y = movielens(train_rows)
    ml_test_x, ml_test_y = movielens(test_rows)
    np.savez(
        path,
        toy_train_x=toy_train_x,
        toy_train_y=toy_train_y,
        toy_test_x=toy_test_x,
        toy_test_y=toy_test_y,
        ml_train_x=ml_train_x,
        ml_train_y=ml_train_y,
        ml_test_x=ml_test_x,
        ml_test_y=ml_test_y,
        ml_vocabulary_sizes=VOCABULARY_SIZES,
    )


@pytest.mark.slow
def test_keras_reference_runs_both_parts(tmp_path):
    python = reference_python()
    data, out = tmp_path / "arrays.npz", tmp_path / "keras.json"
    write_tiny_arrays(data)
    command = [
        python,
        str(SCRIPT),
        "--data",
        str(data),
        "--out",
        str(out),
        "--parts",
        "toy,movielens",
        "--trials",
        "1",
        "--toy-epochs",
        "1",
        "--ml-epochs",
        "1",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    report = json.loads(out.read_text())
    assert report["framework"] == "keras-rs"
    assert report["versions"]["keras_backend"] == "jax"
    assert report["peak_rss_mb"] > 0
    for part, expected in EXPECTED_PARAMS.items():
        result = report["parts"][part]
        assert result["seconds"] > 0
        assert {name: m["params"] for name, m in result["models"].items()} == expected
        for name, model in result["models"].items():
            assert len(model["rmse"]) == 1, name
            assert math.isfinite(model["rmse_mean"]) and model["rmse_mean"] > 0, name
            assert model["ms_per_step"] > 0, name
            assert model["steps_per_trial"] == 2, name  # 2048 rows / batch 1024, 1 epoch
    assert "movielens" in done.stdout and "cross_low_rank" in done.stdout


def test_keras_reference_rejects_out_of_range_indices(tmp_path):
    python = reference_python()
    data = tmp_path / "arrays.npz"
    write_tiny_arrays(data, train_rows=8, test_rows=8)
    with np.load(data) as arrays:
        contents = dict(arrays)
    contents["ml_train_x"][3, 2] = 3  # user_gender has 3 entries: 0, 1, 2
    np.savez(data, **contents)
    command = [python, str(SCRIPT), "--data", str(data), "--parts", "movielens"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 2
    assert "ml_train_x[3, 2]=3" in done.stderr and "user_gender" in done.stderr
