"""Ranking losses, worked out by hand on one 3-item list: scores s = [1, 0, 2], labels y = [2, 1, 0].

The pairs with y_i > y_j are (0, 1), (0, 2), (1, 2), with s_i − s_j = 1, −1, −2.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from dcnrank.training.ranking_losses import RANKING_LOSSES, as_lists, pairwise_loss

S = torch.tensor([[1.0, 0.0, 2.0]])
Y = torch.tensor([[2.0, 1.0, 0.0]])
DIFFS = (1.0, -1.0, -2.0)  # s_i − s_j of the three pairs with y_i > y_j


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


LSE = math.log(math.e + 1.0 + math.e**2)  # log Σ exp(s)
IDEAL = 3.0 / math.log2(2) + 1.0 / math.log2(3)  # gains 2^y − 1 = [3, 1, 0] in the ideal order

EXPECTED = {
    # keras-rs: Σ over pairs of f(s_i − s_j), over the L · S = 3 slots
    "pairwise_hinge": sum(max(0.0, 1.0 - d) for d in DIFFS) / 3,  # (0 + 2 + 3) / 3
    "pairwise_logistic": sum(softplus(-d) for d in DIFFS) / 3,
    "pairwise_soft_zero_one": sum(sigmoid(-d) for d in DIFFS) / 3,
    # every ordered pair i ≠ j: ((s_i − s_j) − (y_i − y_j))² = 0, 9, 9 and the same reversed
    "pairwise_mse": 2 * (0.0 + 9.0 + 9.0) / 3,
    # −Σ (y_i / Σy) log softmax(s)_i = (2/3)(LSE − 1) + (1/3)(LSE − 0)
    "softmax": (2 / 3) * (LSE - 1.0) + (1 / 3) * LSE,
    # the labels' order is (0, 1, 2): [LSE − 1] + [log(e^0 + e^2) − 0] + [2 − 2]
    "list_mle": (LSE - 1.0) + math.log(1.0 + math.e**2),
    # smoothed ranks 1 + σ(−1) + σ(1) = 2, 1 + σ(1) + σ(2), 1 + σ(−1) + σ(−2)
    # pointwise over the 3 valid slots: (1 − 2)² + (0 − 1)² + (2 − 0)²
    "mse": (1.0 + 1.0 + 4.0) / 3,
    "approx_ndcg": -(3.0 / math.log2(1 + 2.0) + 1.0 / math.log2(2 + sigmoid(1) + sigmoid(2))) / IDEAL,
    # current ranks (by score) 2nd, 3rd, 1st: discounts 1/log2(3), 1/2, 1; |ΔDCG| = |Δgain| · |Δdiscount|
    "lambda_rank": (
        2 * (1 / math.log2(3) - 0.5) * softplus(-1.0)
        + 3 * (1.0 - 1 / math.log2(3)) * softplus(1.0)
        + 1 * 0.5 * softplus(2.0)
    )
    / IDEAL,
}


@pytest.mark.parametrize("name", sorted(RANKING_LOSSES))
def test_each_loss_by_hand_on_a_three_item_list(name):
    assert_close(RANKING_LOSSES[name](S, Y), torch.tensor(EXPECTED[name]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(RANKING_LOSSES))
def test_flat_scores_are_the_lists_slot_by_slot(name):
    assert_close(RANKING_LOSSES[name](S.flatten(), Y), RANKING_LOSSES[name](S, Y))


@pytest.mark.parametrize("name", sorted(RANKING_LOSSES))
def test_a_padded_slot_is_not_an_item(name):
    """Label −1: whatever its score, it changes nothing but the pairwise losses' denominator
    (keras divides by every slot: 4 instead of 3)."""
    padded = RANKING_LOSSES[name](torch.tensor([[1.0, 0.0, 2.0, 50.0]]), torch.tensor([[2.0, 1.0, 0.0, -1.0]]))
    scale = 3 / 4 if name.startswith("pairwise") else 1.0  # `mse` averages over the valid slots
    assert_close(padded, torch.tensor(EXPECTED[name] * scale), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(RANKING_LOSSES))
def test_gradients_stay_finite_on_a_list_of_padding_and_one_of_equal_labels(name):
    """(Training skips groups of equal labels; the listwise losses still pull their scores
    together, as TF-Ranking's do.)"""
    scores = torch.tensor([[1.0, 0.0, 2.0], [0.3, 0.1, 0.2], [0.5, -0.5, 0.0]], requires_grad=True)
    labels = torch.tensor([[2.0, 1.0, 0.0], [-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
    loss = RANKING_LOSSES[name](scores, labels)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(scores.grad).all()
    assert_close(scores.grad[1], torch.zeros(3))  # padding: no item
    if name.startswith("pairwise") and name != "pairwise_mse":  # equal labels: no pair to order
        assert_close(scores.grad[2], torch.zeros(3))


def test_listwise_losses_average_over_the_lists_that_can_be_ranked():
    """A list whose labels are all 0 has no ideal order: it neither adds nor counts for the
    softmax, ApproxNDCG and LambdaRank; ListMLE's likelihood of its (slot) order counts."""
    scores = torch.cat([S, torch.tensor([[0.4, 0.2, 0.9]])])
    labels = torch.cat([Y, torch.zeros(1, 3)])
    for name in ("softmax", "approx_ndcg", "lambda_rank"):
        assert_close(RANKING_LOSSES[name](scores, labels), torch.tensor(EXPECTED[name]), rtol=1e-5, atol=1e-6)
    lse = math.log(sum(math.exp(v) for v in (0.4, 0.2, 0.9)))
    second = (lse - 0.4) + (math.log(math.exp(0.2) + math.exp(0.9)) - 0.2)
    assert_close(RANKING_LOSSES["list_mle"](scores, labels), torch.tensor((EXPECTED["list_mle"] + second) / 2))


def test_the_loss_falls_as_the_order_gets_right():
    right, wrong = torch.tensor([[3.0, 2.0, 1.0]]), torch.tensor([[1.0, 2.0, 3.0]])
    for name, loss in RANKING_LOSSES.items():
        if name != "pairwise_mse":
            assert loss(right, Y) < loss(wrong, Y), name


def test_temperature_divides_the_differences():
    hot = pairwise_loss("pairwise_hinge", temperature=2.0)
    assert_close(hot(S, Y), torch.tensor(sum(max(0.0, 1.0 - d / 2) for d in DIFFS) / 3))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: pairwise_loss("hinge"), r"`name` must be one of pairwise_hinge.*Received: name='hinge'"),
        (lambda: pairwise_loss("pairwise_hinge", temperature=0), r"`temperature` .* Received: temperature=0"),
        (lambda: as_lists(torch.zeros(3), torch.zeros(3)), r"`labels` must be \(lists, slots\)"),
        (lambda: as_lists(torch.zeros(5), torch.zeros(2, 3)), r"one value per list slot.*scores.shape=\(5,\)"),
    ],
)
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()
