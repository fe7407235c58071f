"""The user + item bias baseline and the validation-curve plot of the demo report."""

from __future__ import annotations

import numpy as np
import pytest
from torch.testing import assert_close

from dcnrank.experiments.bias_baseline import BiasBaseline
from dcnrank.experiments.curves import plot_curves


def test_one_sweep_by_hand() -> None:
    # μ = 3; items first: b_i0 = (1 + 0) / (1 + 2) = 1/3, b_i1 = (-1) / (1 + 1) = -1/2;
    # then users: b_u0 = ((1 - 1/3) + (-1 + 1/2)) / (1 + 2) = 1/18, b_u1 = (0 - 1/3) / (1 + 1) = -1/6
    baseline = BiasBaseline.fit([0, 0, 1], [0, 1, 0], [4.0, 2.0, 3.0], 2, 2, reg_user=1.0, reg_item=1.0, sweeps=1)
    assert baseline.global_mean == 3.0
    assert_close(baseline.item_bias, np.array([1 / 3, -1 / 2]))
    assert_close(baseline.user_bias, np.array([1 / 18, -1 / 6]))
    assert_close(baseline.predict([1], [1]), np.array([3.0 - 1 / 6 - 1 / 2]))


def test_unseen_codes_get_no_bias() -> None:
    baseline = BiasBaseline.fit([1], [1], [5.0], 3, 3)
    assert_close(baseline.predict([2, 0], [2, 0]), np.array([5.0, 5.0]))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"users": [0, 5]}, r"`users` must lie in 0\.\.1\. Received: 0\.\.5"),
        ({"users": [0.5, 1.0]}, "`users` must be a 1-D integer array"),
        ({"labels": [1.0, float("nan")]}, "finite labels"),
        ({"labels": [1.0]}, "of one length"),
        ({"num_items": 0}, r"`num_items` must be a positive int\. Received: num_items=0"),
        ({"reg_user": -1.0}, r"`reg_user` must be a number ≥ 0\. Received: reg_user=-1\.0"),
    ],
)
def test_bad_input_is_refused_by_name(arguments: dict, message: str) -> None:
    given = {"users": [0, 1], "items": [0, 1], "labels": [1.0, 2.0], "num_users": 2, "num_items": 2, **arguments}
    keywords = {k: given.pop(k) for k in ("reg_user",) if k in given}
    with pytest.raises(ValueError, match=message):
        BiasBaseline.fit(**given, **keywords)


def test_curves_are_a_png_and_bad_curves_are_refused(tmp_path) -> None:  # noqa: ANN001
    png = plot_curves({"a": [1.0, 0.5], "b": [float("nan"), 0.7]}, tmp_path / "c.png", baselines={"bias": 0.6})
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="at least one curve"):
        plot_curves({}, tmp_path / "d.png")
    with pytest.raises(ValueError, match=r"`curves\['a'\]` must hold a finite value"):
        plot_curves({"a": [float("nan")]}, tmp_path / "d.png")
    with pytest.raises(ValueError, match="must name a PNG file"):
        plot_curves({"a": [1.0]}, tmp_path / "d.jpg")
