"""The demo report's last section: the recipe, the seed's protocol and the bias baseline on one split."""

from __future__ import annotations

import json
import math

import pytest

from dcnrank.data.sources.movielens import load_movielens_source
from dcnrank.experiments.protocols import BIAS, COMPARISON_FILE, CURVES_FILE, RECIPE, SEED_PROTOCOL, compare_protocols
from dcnrank.experiments.report import write_report


@pytest.fixture(scope="module")
def compared(movielens_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("protocols")
    source = load_movielens_source(movielens_dir)
    return out, compare_protocols(source, out, epochs=3, max_train_rows=4000)


def test_three_models_on_one_split_with_curves(compared):
    out, comparison = compared
    assert comparison.rows["train"] == 4000 and comparison.rows["test"] == 20_000
    assert comparison.rows["fit"] + comparison.rows["validation"] == 4000
    assert set(comparison.test_rmse) == {SEED_PROTOCOL, RECIPE, BIAS}
    assert all(0.5 < value < 2.0 and math.isfinite(value) for value in comparison.test_rmse.values())
    assert len(comparison.validation_rmse[SEED_PROTOCOL]) == 3  # the seed's protocol never stops early
    assert 1 <= len(comparison.validation_rmse[RECIPE]) <= 3 and len(comparison.validation_rmse[BIAS]) == 1
    assert json.loads((out / COMPARISON_FILE).read_text()) == comparison.to_dict()
    assert (out / CURVES_FILE).read_bytes()[:4] == b"\x89PNG"


def test_the_report_ends_with_the_comparison(compared):
    out, comparison = compared
    text = write_report(out).read_text()
    assert "## The recipe, the seed's protocol and a bias baseline (split `random`)" in text
    assert f"| {BIAS} | – |" in text and f"{comparison.test_rmse[RECIPE]:.4f}" in text
    assert text.rstrip().endswith(f"![validation RMSE per epoch]({CURVES_FILE})")
