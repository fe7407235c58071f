"""Ranking metrics against a plain per-user Python reference, hand-worked values and edge cases."""

import math
import random

import numpy as np
import pytest
import torch

from dcnrank.metrics import (
    mean_average_precision,
    mean_reciprocal_rank,
    ndcg,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
)

# ----------------------------------------------------------------- reference (one user at a time)


def _ranked_labels(labels, scores):
    """Labels of one group in ranked order; ties keep input order."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return [labels[i] for i in order]


def ref_ndcg(labels, scores, k):
    ranked = _ranked_labels(labels, scores)
    ideal = sorted(labels, reverse=True)

    def dcg(values):
        top = values if k is None else values[:k]
        return sum((2**y - 1) / math.log2(1 + i) for i, y in enumerate(top, start=1))

    return dcg(ranked) / dcg(ideal) if dcg(ideal) > 0 else 0.0


def ref_ap(labels, scores, k, threshold):
    ranked = [y >= threshold for y in _ranked_labels(labels, scores)]
    total = sum(ranked)
    if total == 0:
        return 0.0
    hits, acc = 0, 0.0
    for i, rel in enumerate(ranked if k is None else ranked[:k], start=1):
        if rel:
            hits += 1
            acc += hits / i
    return acc / total


def ref_rr(labels, scores, k, threshold):
    ranked = [y >= threshold for y in _ranked_labels(labels, scores)]
    for i, rel in enumerate(ranked if k is None else ranked[:k], start=1):
        if rel:
            return 1.0 / i
    return 0.0


def ref_precision(labels, scores, k, threshold):
    ranked = [y >= threshold for y in _ranked_labels(labels, scores)]
    top = ranked if k is None else ranked[:k]
    return sum(top) / len(top)


def ref_recall(labels, scores, k, threshold):
    ranked = [y >= threshold for y in _ranked_labels(labels, scores)]
    total = sum(ranked)
    top = ranked if k is None else ranked[:k]
    return sum(top) / total if total else 0.0


def ref_mean(per_group, labels, scores, groups, **kwargs):
    by_group = {}
    for y, s, g in zip(labels, scores, groups, strict=True):
        by_group.setdefault(g, ([], []))
        by_group[g][0].append(y)
        by_group[g][1].append(s)
    values = [per_group(ys, ss, **kwargs) for ys, ss in by_group.values()]
    return sum(values) / len(values)


# ----------------------------------------------------------------- hand-checkable values


def test_one_user_by_hand():
    # One user; ratings [5, 3, 4] scored [0.9, 0.8, 0.1] rank as [5, 3, 4].
    labels, scores, groups = [5, 3, 4], [0.9, 0.8, 0.1], [42, 42, 42]
    # DCG = 31/log2(2) + 7/log2(3) + 15/log2(4) = 31 + 4.41651 + 7.5 = 42.91651
    # IDCG (order 5, 4, 3) = 31 + 15/log2(3) + 7/2 = 31 + 9.46395 + 3.5 = 43.96395
    assert ndcg(labels, scores, groups) == pytest.approx(42.91651 / 43.96395, abs=1e-6)
    # NDCG@1: the top item is the best one.
    assert ndcg(labels, scores, groups, k=1) == pytest.approx(1.0)
    # NDCG@2 = (31 + 7/log2 3) / (31 + 15/log2 3) = 35.41651 / 40.46395
    assert ndcg(labels, scores, groups, k=2) == pytest.approx(35.41651 / 40.46395, abs=1e-6)
    # Relevant (>= 4): ranks 1 and 3. AP = (1/1 + 2/3) / 2 = 5/6.
    assert mean_average_precision(labels, scores, groups, threshold=4) == pytest.approx(5 / 6)
    # AP@2 = (1/1) / 2: the denominator counts both relevant items.
    assert mean_average_precision(labels, scores, groups, k=2, threshold=4) == pytest.approx(0.5)
    assert mean_reciprocal_rank(labels, scores, groups, threshold=4) == pytest.approx(1.0)
    assert precision_at_k(labels, scores, groups, k=2, threshold=4) == pytest.approx(0.5)
    assert recall_at_k(labels, scores, groups, k=2, threshold=4) == pytest.approx(0.5)
    assert recall_at_k(labels, scores, groups, k=3, threshold=4) == pytest.approx(1.0)


def test_two_users_average_and_interleaving():
    # User 1: ratings [1, 5] scored [0.9, 0.2] -> relevant item at rank 2: RR 1/2, P@1 0.
    # User 2: ratings [2, 2] -> nothing relevant: RR 0, AP 0, recall 0 (still averaged in).
    labels = [1, 2, 5, 2]
    scores = [0.9, 0.5, 0.2, 0.4]
    groups = [1, 2, 1, 2]
    assert mean_reciprocal_rank(labels, scores, groups, threshold=4) == pytest.approx(0.25)
    assert precision_at_k(labels, scores, groups, k=1, threshold=4) == pytest.approx(0.0)
    assert recall_at_k(labels, scores, groups, k=2, threshold=4) == pytest.approx(0.5)
    assert mean_average_precision(labels, scores, groups, threshold=4) == pytest.approx(0.25)
    # User 1 NDCG = (1 + 31/log2 3) / (31 + 1/log2 3); user 2: equal labels -> 1.
    user1 = (1 + 31 / math.log2(3)) / (31 + 1 / math.log2(3))
    assert ndcg(labels, scores, groups) == pytest.approx((user1 + 1.0) / 2)


def test_ties_keep_input_order():
    # Equal scores: the first row ranks first (keras-rs with shuffle_ties=False).
    assert mean_reciprocal_rank([0, 1], [0.5, 0.5], [1, 1]) == pytest.approx(0.5)
    assert mean_reciprocal_rank([1, 0], [0.5, 0.5], [1, 1]) == pytest.approx(1.0)


def test_precision_divides_by_short_list_length():
    # Two items, k=5: keras-rs divides by min(k, list size) = 2.
    assert precision_at_k([1, 0], [0.2, 0.1], [1, 1], k=5) == pytest.approx(0.5)


def test_all_zero_labels_give_zero_ndcg():
    assert ndcg([0, 0], [0.3, 0.1], [1, 1]) == 0.0


def test_string_groups_and_torch_inputs():
    value = ndcg(torch.tensor([5.0, 3.0, 4.0]), torch.tensor([0.9, 0.8, 0.1]), np.array(["a", "a", "a"]))
    assert value == pytest.approx(ndcg([5, 3, 4], [0.9, 0.8, 0.1], [1, 1, 1]))


def test_ranking_metrics_agrees_with_single_functions():
    rng = np.random.default_rng(1)
    labels = rng.integers(1, 6, size=200)
    scores = rng.normal(size=200)
    groups = rng.integers(0, 15, size=200)
    result = ranking_metrics(labels, scores, groups, k=5, threshold=4)
    assert result["ndcg@5"] == ndcg(labels, scores, groups, k=5)
    assert result["map@5"] == mean_average_precision(labels, scores, groups, k=5, threshold=4)
    assert result["mrr"] == mean_reciprocal_rank(labels, scores, groups, threshold=4)
    assert result["precision@5"] == precision_at_k(labels, scores, groups, k=5, threshold=4)
    assert result["recall@5"] == recall_at_k(labels, scores, groups, k=5, threshold=4)
    assert result["groups"] == len(np.unique(groups))


# ----------------------------------------------------------------- random cases vs the reference


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("k", [None, 1, 3, 10])
def test_matches_reference_on_random_data(seed, k):
    rnd = random.Random(seed)
    n = rnd.randint(1, 60)
    labels = [rnd.randint(0, 5) for _ in range(n)]
    # Rounded scores make ties frequent, so the tie rule is exercised too.
    scores = [round(rnd.random(), 1) for _ in range(n)]
    groups = [rnd.randint(0, 6) for _ in range(n)]
    t = 4
    assert ndcg(labels, scores, groups, k) == pytest.approx(ref_mean(ref_ndcg, labels, scores, groups, k=k))
    cases = [
        (mean_average_precision, ref_ap),
        (mean_reciprocal_rank, ref_rr),
        (precision_at_k, ref_precision),
        (recall_at_k, ref_recall),
    ]
    for ours, reference in cases:
        expected = ref_mean(reference, labels, scores, groups, k=k, threshold=t)
        assert ours(labels, scores, groups, k, threshold=t) == pytest.approx(expected), ours.__name__


# ----------------------------------------------------------------- validation


def test_validation_errors():
    with pytest.raises(ValueError, match=r"same length\. Received: 2, 1 and 2"):
        ndcg([1, 2], [0.1], [1, 1])
    with pytest.raises(ValueError, match=r"`labels` must not be empty"):
        ndcg([], [], [])
    with pytest.raises(ValueError, match=r"`scores` must be 1-D\. Received: shape=\(1, 2\)"):
        ndcg([1, 2], [[0.1, 0.2]], [1, 1])
    with pytest.raises(ValueError, match=r"must be numeric\. Received: labels\.dtype=<U1"):
        ndcg(["a"], [0.1], [1])
    with pytest.raises(ValueError, match=r"`scores` must be finite\. Received: scores\[1\]=nan"):
        ndcg([1, 2], [0.1, float("nan")], [1, 1])
    with pytest.raises(ValueError, match=r"`k` must be a positive int or None\. Received: k=0"):
        recall_at_k([1], [0.1], [1], k=0)
    with pytest.raises(ValueError, match=r"`k` must be a positive int or None\. Received: k=True"):
        precision_at_k([1], [0.1], [1], k=True)
    with pytest.raises(ValueError, match=r"non-negative.*Received: labels\[1\]=-1\.0"):
        ndcg([1, -1], [0.1, 0.2], [1, 1])
