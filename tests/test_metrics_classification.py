"""Click-through metrics and loss: AUC, GAUC and log loss against plain Python references,
hand-worked values, label validation, and `bce_with_logits` in a `Trainer`."""

import math
import random

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from dcnrank.metrics import auc, group_auc, logloss, validate_binary_labels
from dcnrank.training import TrainConfig, Trainer
from dcnrank.training.losses import bce_with_logits

# ----------------------------------------------------------------- references


def reference_auc(labels, scores):
    """Share of (click, non-click) pairs the scores order correctly; a tie counts ½."""
    positives = [s for y, s in zip(labels, scores, strict=True) if y == 1]
    negatives = [s for y, s in zip(labels, scores, strict=True) if y == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def reference_group_auc(labels, scores, groups):
    rows = {}
    for y, s, g in zip(labels, scores, groups, strict=True):
        rows.setdefault(g, []).append((y, s))
    total = weight = 0.0
    for members in rows.values():
        ys = [y for y, _ in members]
        if 0 < sum(ys) < len(ys):
            total += len(members) * reference_auc(ys, [s for _, s in members])
            weight += len(members)
    return total / weight


def reference_logloss(labels, probabilities, eps=1e-7):
    clipped = [min(max(p, eps), 1 - eps) for p in probabilities]
    return -sum(y * math.log(p) + (1 - y) * math.log(1 - p) for y, p in zip(labels, clipped, strict=True)) / len(labels)


def random_case(seed, n=200, groups=12, levels=7):
    rng = random.Random(seed)
    labels = [rng.randint(0, 1) for _ in range(n)]
    scores = [rng.randint(0, levels) / levels for _ in range(n)]  # few levels: many ties
    group = [rng.randrange(groups) for _ in range(n)]
    return labels, scores, group


# ----------------------------------------------------------------- AUC


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_pairwise_reference_with_ties(seed):
    labels, scores, _ = random_case(seed)
    assert auc(labels, scores) == pytest.approx(reference_auc(labels, scores), abs=1e-12)
    continuous = [random.Random(seed + 100).random() for _ in labels]
    assert auc(labels, continuous) == pytest.approx(reference_auc(labels, continuous), abs=1e-12)


def test_auc_by_hand():
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75  # 3 of 4 pairs in order
    assert auc([0, 1], [0.2, 0.9]) == 1.0
    assert auc([1, 0], [0.2, 0.9]) == 0.0
    assert auc([0, 1, 1], [0.5, 0.5, 0.5]) == 0.5  # all tied: each pair ½
    # ranks of [.1, .5, .5, .9] are 1, 2.5, 2.5, 4; clicks at .5 and .9: (2.5 + 4 − 3) / (2 · 2) = 0.875
    assert auc([0, 1, 0, 1], [0.1, 0.5, 0.5, 0.9]) == 0.875


def test_auc_accepts_tensors_bools_and_logits():
    labels = torch.tensor([False, True, True, False])
    logits = torch.tensor([-1.0, 2.0, 0.5, 1.0])
    assert auc(labels, logits) == auc(labels.int().numpy(), torch.sigmoid(logits).numpy()) == 0.75


def test_auc_errors():
    with pytest.raises(ValueError, match=r"must hold both classes for AUC\. Received: 3 rows, 3 of them 1"):
        auc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"Received: 2 rows, 0 of them 1"):
        auc([0, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match=r"`labels` and `scores` must have the same length\. Received: 2 and 3"):
        auc([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"`labels` must not be empty"):
        auc([], [])
    with pytest.raises(ValueError, match=r"`scores` must be finite\. Received 1 row: scores\[1\]=nan"):
        auc([0, 1], [0.1, float("nan")])
    with pytest.raises(ValueError, match=r"`scores` must be numeric\. Received: scores\.dtype=<U1"):
        auc([0, 1], ["a", "b"])
    with pytest.raises(ValueError, match=r"`scores` must be 1-D"):
        auc([0, 1], [[0.1, 0.2]])
    with pytest.raises(ValueError, match=r"labels\[1\]=2"):
        auc([0, 2], [0.1, 0.2])


# ----------------------------------------------------------------- GAUC


@pytest.mark.parametrize("seed", range(5))
def test_group_auc_matches_reference(seed):
    labels, scores, groups = random_case(seed, groups=30)  # ~7 rows a group: some with one class
    assert group_auc(labels, scores, groups) == pytest.approx(reference_group_auc(labels, scores, groups), abs=1e-12)


def test_group_auc_by_hand_skips_one_class_groups():
    labels = [0, 1, 1, 0, 1, 0, 0, 1, 1]
    scores = [0.1, 0.9, 0.2, 0.3, 0.5, 0.4, 0.6, 0.7, 0.1]
    groups = ["a", "a", "b", "b", "c", "c", "c", "d", "d"]
    # a: 1 (2 rows), b: 0 (2 rows), c: ½ (3 rows); d has only clicks: skipped
    assert group_auc(labels, scores, groups) == pytest.approx((2 * 1 + 2 * 0 + 3 * 0.5) / 7)
    # groups interleaved and in any order give the same value
    order = [8, 3, 0, 6, 2, 4, 7, 1, 5]
    shuffled = [[values[i] for i in order] for values in (labels, scores, groups)]
    assert group_auc(*shuffled) == group_auc(labels, scores, groups)


def test_group_auc_of_one_group_is_auc():
    labels, scores, _ = random_case(7)
    assert group_auc(labels, scores, np.zeros(len(labels))) == pytest.approx(auc(labels, scores), abs=1e-12)


def test_group_auc_does_not_mix_tied_scores_across_groups():
    # the same score in two groups must not share a tie block
    assert group_auc([0, 1, 1, 0], [0.5, 0.7, 0.5, 0.3], [1, 1, 2, 2]) == 1.0


def test_group_auc_errors():
    with pytest.raises(ValueError, match=r"no group holds both classes.* Received: 2 groups, each with one class"):
        group_auc([1, 1, 0], [0.1, 0.2, 0.3], [1, 1, 2])
    with pytest.raises(ValueError, match=r"`labels` and `groups` must have the same length\. Received: 3 and 2"):
        group_auc([1, 0, 0], [0.1, 0.2, 0.3], [1, 1])
    with pytest.raises(ValueError, match=r"`groups` must be 1-D"):
        group_auc([1, 0], [0.1, 0.2], [[1, 1]])


# ----------------------------------------------------------------- log loss


@pytest.mark.parametrize("seed", range(3))
def test_logloss_matches_reference(seed):
    rng = random.Random(seed)
    labels = [rng.randint(0, 1) for _ in range(100)]
    probabilities = [rng.random() for _ in labels] + [0.0, 1.0]  # the extremes are clipped
    labels += [1, 0]
    assert logloss(labels, probabilities) == pytest.approx(reference_logloss(labels, probabilities), rel=1e-12)


def test_logloss_by_hand():
    assert logloss([1, 0], [0.8, 0.4]) == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)
    assert logloss([1], [0.0]) == pytest.approx(-math.log(1e-7))  # clipped, not infinite
    assert logloss([1], [0.0], eps=1e-3) == pytest.approx(-math.log(1e-3))
    assert logloss([1, 0], [0.0, 0.0], from_logits=True) == pytest.approx(math.log(2))
    # z = 2, y = 0: softplus(2) = log(1 + e²)
    assert logloss([0], [2.0], from_logits=True) == pytest.approx(math.log1p(math.exp(2.0)))


def test_logloss_from_logits_equals_probabilities_and_clips_alike():
    logits = np.array([-30.0, -2.0, 0.0, 1.5, 40.0])
    labels = [1, 0, 1, 1, 0]
    probabilities = 1 / (1 + np.exp(-logits))
    assert logloss(labels, logits, from_logits=True) == pytest.approx(logloss(labels, probabilities), rel=1e-9)
    assert logloss([0], [40.0], from_logits=True) == pytest.approx(-math.log(1e-7), rel=1e-9)


def test_logloss_errors():
    with pytest.raises(
        ValueError,
        match=r"probabilities in \[0, 1\] \(pass from_logits=True.*"
        r"Received 2 rows: predictions\[1\]=1\.5, predictions\[2\]=-0\.5",
    ):
        logloss([0, 1, 1], [0.5, 1.5, -0.5])
    with pytest.raises(ValueError, match=r"`predictions` must be finite\. Received 1 row: predictions\[0\]=inf"):
        logloss([0], [float("inf")], from_logits=True)
    for eps in (0.0, 0.5, True):
        with pytest.raises(ValueError, match=rf"`eps` must be a number in \(0, 0\.5\)\. Received: eps={eps!r}"):
            logloss([0], [0.5], eps=eps)
    with pytest.raises(ValueError, match=r"`labels` and `predictions` must have the same length"):
        logloss([0, 1], [0.5])


# ----------------------------------------------------------------- label validation


def test_validate_binary_labels():
    np.testing.assert_array_equal(validate_binary_labels(torch.tensor([1, 0, 1])), [1.0, 0.0, 1.0])
    assert validate_binary_labels(np.array([True, False])).dtype == np.float64
    with pytest.raises(
        ValueError, match=r"`labels` must be 0 or 1 \(not NaN\)\. Received 2 rows: labels\[1\]=nan, labels\[3\]=0\.5$"
    ):
        validate_binary_labels([0.0, float("nan"), 1.0, 0.5])
    with pytest.raises(ValueError, match=r"Received 7 rows \(first 5 shown\): labels\[0\]=2, .* labels\[4\]=-1$"):
        validate_binary_labels([2, 3, 4, 5, -1, 7, 8, 1])
    with pytest.raises(ValueError, match=r"`labels` must be numeric\. Received: labels\.dtype=<U3"):
        validate_binary_labels(["yes", "no"])
    with pytest.raises(ValueError, match=r"`labels` must be 1-D\. Received: shape=\(1, 2\)"):
        validate_binary_labels([[0, 1]])


# ----------------------------------------------------------------- loss


def test_bce_with_logits_by_hand():
    # (softplus(0) − 1·0 + softplus(2) − 0) / 2 = (log 2 + log(1 + e²)) / 2
    loss = bce_with_logits(torch.tensor([0.0, 2.0]), torch.tensor([1, 0]))
    assert_close(loss, torch.tensor((math.log(2) + math.log1p(math.exp(2))) / 2))
    # stable for large logits: a confident correct answer costs ~0, a confident mistake ~|z|
    assert_close(bce_with_logits(torch.tensor([100.0, -100.0]), torch.tensor([1.0, 1.0])), torch.tensor(50.0))


def test_bce_with_logits_shape_mismatch():
    with pytest.raises(ValueError, match=r"predictions\.shape=\(2, 1\), labels\.shape=\(2,\)"):
        bce_with_logits(torch.zeros(2, 1), torch.zeros(2))


def test_trainer_learns_clicks_with_bce():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(512, 3, generator=g)
    y = (x[:, 0] - x[:, 1] > 0).float()
    model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0))
    history = Trainer(TrainConfig(epochs=5, batch_size=64, learning_rate=0.05), loss_fn=bce_with_logits).fit(
        model, x, y
    )
    assert history.loss[-1] < history.loss[0]
    logits = Trainer().predict(model, x)
    assert auc(y, logits) > 0.95
    assert logloss(y, logits, from_logits=True) == pytest.approx(float(bce_with_logits(logits, y)), rel=1e-5)
