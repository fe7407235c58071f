"""Ranking metrics per group (user), averaged over groups: NDCG@k, MAP@k, MRR, P@k, R@k.

Every function takes flat, aligned arrays — one entry per (group, item) row, the rows of a
group in any order and groups interleaved — and ranks each group's items by descending
score. Nothing loops over groups in Python: one `np.lexsort` orders all rows by
(group, −score), and per-group sums are `np.bincount` / `np.ufunc.reduceat` calls.

The definitions follow `keras_rs.metrics` (`NDCG`, `MeanAveragePrecision`,
`MeanReciprocalRank`, `PrecisionAtK`, `RecallAtK`) with unit sample weights:

- ties in score keep the rows' input order (keras-rs' `shuffle_ties=False`);
- binary metrics call an item relevant when `label >= threshold` (keras-rs: `>= 1`);
- a group with no relevant item scores 0 and still counts in the average (keras-rs gives
  such lists the average weight, which is 1 with unit weights);
- the result is the plain mean over groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "as_1d",
    "mean_average_precision",
    "mean_reciprocal_rank",
    "ndcg",
    "precision_at_k",
    "ranking_metrics",
    "recall_at_k",
]


@dataclass(frozen=True)
class _Ranked:
    """All rows sorted by (group, descending score); `rank` is 1-based within the group."""

    labels: np.ndarray  # (N,) labels in ranked order
    group: np.ndarray  # (N,) dense group index 0..G-1 of each ranked row
    rank: np.ndarray  # (N,) 1-based rank within the group
    starts: np.ndarray  # (G,) first ranked row of each group
    sizes: np.ndarray  # (G,) rows per group


def as_1d(values: Any, argument: str) -> np.ndarray:
    """`values` (a tensor, an array or a sequence) as a 1-D numpy array.

    Raises:
        ValueError: if it is not 1-D, naming `argument`.

    Example:
        >>> as_1d([1, 2], "labels").shape
        (2,)
    """
    if hasattr(values, "detach"):  # a torch tensor
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"`{argument}` must be 1-D. Received: shape={array.shape}")
    return array


def _check(
    labels: Any, scores: Any, groups: Any, k: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    labels = as_1d(labels, "labels")
    scores = as_1d(scores, "scores")
    groups = as_1d(groups, "groups")
    if not (len(labels) == len(scores) == len(groups)):
        raise ValueError(
            "`labels`, `scores` and `groups` must have the same length. "
            f"Received: {len(labels)}, {len(scores)} and {len(groups)}"
        )
    if len(labels) == 0:
        raise ValueError("`labels` must not be empty. Received: 0 rows")
    if labels.dtype.kind not in "biuf" or scores.dtype.kind not in "biuf":
        raise ValueError(
            "`labels` and `scores` must be numeric. "
            f"Received: labels.dtype={labels.dtype}, scores.dtype={scores.dtype}"
        )
    labels = labels.astype(np.float64)
    scores = scores.astype(np.float64)
    for name, array in (("labels", labels), ("scores", scores)):
        bad = ~np.isfinite(array)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"`{name}` must be finite. Received: {name}[{first}]={array[first].item()!r}"
            )
    if k is not None and (isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1):
        raise ValueError(f"`k` must be a positive int or None. Received: k={k!r}")
    return labels, scores, groups


def _rank(labels: np.ndarray, sort_key: np.ndarray, groups: np.ndarray) -> _Ranked:
    """Sort rows by group, then by descending `sort_key`; ties keep input order."""
    # lexsort is stable and sorts by its last key first.
    order = np.lexsort((-sort_key, groups))
    sorted_groups = groups[order]
    new_group = np.empty(len(order), dtype=bool)
    new_group[0] = True
    new_group[1:] = sorted_groups[1:] != sorted_groups[:-1]
    starts = np.flatnonzero(new_group)
    group = np.cumsum(new_group) - 1
    rank = np.arange(len(order)) - starts[group] + 1
    sizes = np.diff(np.append(starts, len(order)))
    return _Ranked(labels[order], group, rank, starts, sizes)


def _per_group_sum(ranked: _Ranked, values: np.ndarray) -> np.ndarray:
    return np.bincount(ranked.group, weights=values, minlength=len(ranked.starts))


def _cutoff(ranked: _Ranked, k: int | None) -> np.ndarray:
    """True for rows ranked within the top `k` of their group (all rows when `k` is None)."""
    return np.ones(len(ranked.rank), dtype=bool) if k is None else ranked.rank <= k


def _ndcg(labels: np.ndarray, scores: np.ndarray, groups: np.ndarray, k: int | None) -> np.ndarray:
    if (labels < 0).any():
        first = int(np.flatnonzero(labels < 0)[0])
        raise ValueError(
            "`labels` must be non-negative graded relevances for NDCG. "
            f"Received: labels[{first}]={labels[first].item()!r}"
        )
    predicted = _rank(labels, scores, groups)
    ideal = _rank(labels, labels, groups)  # same group order, so group indices agree
    dcg = _dcg(predicted, k)
    idcg = _dcg(ideal, k)
    return np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0)


def _dcg(ranked: _Ranked, k: int | None) -> np.ndarray:
    gain = np.exp2(ranked.labels) - 1.0
    discount = 1.0 / np.log2(ranked.rank + 1.0)
    return _per_group_sum(ranked, gain * discount * _cutoff(ranked, k))


def _binary(
    labels: np.ndarray, scores: np.ndarray, groups: np.ndarray, threshold: float
) -> tuple[_Ranked, np.ndarray, np.ndarray]:
    """Ranked rows, their 0/1 relevance, and each group's total number of relevant items."""
    ranked = _rank(labels, scores, groups)
    relevant = (ranked.labels >= threshold).astype(np.float64)
    return ranked, relevant, _per_group_sum(ranked, relevant)


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(
        numerator, denominator, out=np.zeros_like(numerator, dtype=np.float64), where=denominator > 0
    )


def _average_precision(
    ranked: _Ranked, relevant: np.ndarray, total: np.ndarray, k: int | None
) -> np.ndarray:
    running = np.cumsum(relevant)
    before_group = (running - relevant)[ranked.starts]  # relevant rows in earlier groups
    hits_so_far = running - before_group[ranked.group]  # (N,) relevant items at ranks 1..i
    precision = hits_so_far / ranked.rank
    return _safe_divide(_per_group_sum(ranked, precision * relevant * _cutoff(ranked, k)), total)


def _reciprocal_rank(ranked: _Ranked, relevant: np.ndarray, k: int | None) -> np.ndarray:
    reciprocal = relevant * _cutoff(ranked, k) / ranked.rank
    return np.maximum.reduceat(reciprocal, ranked.starts)


def _hits(ranked: _Ranked, relevant: np.ndarray, k: int | None) -> np.ndarray:
    return _per_group_sum(ranked, relevant * _cutoff(ranked, k))


def _precision(ranked: _Ranked, relevant: np.ndarray, k: int | None) -> np.ndarray:
    # keras-rs divides by the list's length when it is shorter than k.
    shown = ranked.sizes if k is None else np.minimum(ranked.sizes, k)
    return _hits(ranked, relevant, k) / shown


def ndcg(labels: Any, scores: Any, groups: Any, k: int | None = None) -> float:
    """Normalised discounted cumulative gain at `k`, averaged over groups.

    For one group, with `y_i` the label of the item the scores rank `i`-th (from 1) and
    `y*_i` the label ranked `i`-th by the labels themselves:

        DCG@k  = Σ_{i ≤ k} (2^{y_i} − 1) / log2(1 + i)
        NDCG@k = DCG@k(y) / DCG@k(y*)          (0 when DCG@k(y*) = 0)

    Args:
        labels: non-negative graded relevances (e.g. 1–5 stars), shape `(N,)`.
        scores: predicted scores, higher ranks first, shape `(N,)`.
        groups: the group (user) of each row, any hashable numpy dtype, shape `(N,)`.
        k: int ≥ 1, the cutoff; None ranks whole groups. Defaults to None.

    Returns:
        The mean over groups, in [0, 1].

    Raises:
        ValueError: if the arrays are not 1-D of one length, are empty, hold non-finite
            or (labels) negative values, or `k` is not a positive int.

    Example:
        >>> round(ndcg([5, 3, 4], [0.9, 0.8, 0.1], [1, 1, 1]), 4)
        0.9762
    """
    labels, scores, groups = _check(labels, scores, groups, k)
    return float(_ndcg(labels, scores, groups, k).mean())


def mean_average_precision(
    labels: Any, scores: Any, groups: Any, k: int | None = None, threshold: float = 1.0
) -> float:
    """Mean average precision at `k` (MAP@k), averaged over groups.

    With `rel_i ∈ {0, 1}` (`label ≥ threshold`) at rank `i` and `P@i` the share of
    relevant items among the top `i`:

        AP@k = Σ_{i ≤ k} P@i · rel_i / Σ_all rel      (0 when the group has no relevant item)

    The denominator counts every relevant item of the group, as keras-rs does, so a group
    with more relevant items than `k` cannot reach 1.

    Args:
        labels: relevance labels, shape `(N,)`.
        scores: predicted scores, shape `(N,)`.
        groups: the group of each row, shape `(N,)`.
        k: int ≥ 1, the cutoff; None ranks whole groups. Defaults to None.
        threshold: float, labels at or above it are relevant. Defaults to 1 (keras-rs).

    Returns:
        The mean over groups, in [0, 1].

    Raises:
        ValueError: on malformed inputs, as :func:`ndcg`.

    Example:
        >>> round(mean_average_precision([5, 3, 4], [0.9, 0.8, 0.1], [1, 1, 1], threshold=4), 4)
        0.8333
    """
    labels, scores, groups = _check(labels, scores, groups, k)
    ranked, relevant, total = _binary(labels, scores, groups, threshold)
    return float(_average_precision(ranked, relevant, total, k).mean())


def mean_reciprocal_rank(
    labels: Any, scores: Any, groups: Any, k: int | None = None, threshold: float = 1.0
) -> float:
    """Mean reciprocal rank: `1 / rank` of each group's first relevant item (0 if none in top `k`).

    Args:
        labels: relevance labels, shape `(N,)`.
        scores: predicted scores, shape `(N,)`.
        groups: the group of each row, shape `(N,)`.
        k: int ≥ 1, the cutoff; None ranks whole groups. Defaults to None.
        threshold: float, labels at or above it are relevant. Defaults to 1.

    Returns:
        The mean over groups, in [0, 1].

    Raises:
        ValueError: on malformed inputs, as :func:`ndcg`.

    Example:
        >>> mean_reciprocal_rank([3, 5], [0.9, 0.1], [7, 7], threshold=4)
        0.5
    """
    labels, scores, groups = _check(labels, scores, groups, k)
    ranked, relevant, _ = _binary(labels, scores, groups, threshold)
    return float(_reciprocal_rank(ranked, relevant, k).mean())


def precision_at_k(
    labels: Any, scores: Any, groups: Any, k: int | None = None, threshold: float = 1.0
) -> float:
    """Precision at `k`: relevant items among a group's top `k`, over `min(k, group size)`.

    Args:
        labels: relevance labels, shape `(N,)`.
        scores: predicted scores, shape `(N,)`.
        groups: the group of each row, shape `(N,)`.
        k: int ≥ 1, the cutoff; None ranks whole groups. Defaults to None.
        threshold: float, labels at or above it are relevant. Defaults to 1.

    Returns:
        The mean over groups, in [0, 1].

    Raises:
        ValueError: on malformed inputs, as :func:`ndcg`.

    Example:
        >>> precision_at_k([5, 3, 4], [0.9, 0.8, 0.1], [1, 1, 1], k=2, threshold=4)
        0.5
    """
    labels, scores, groups = _check(labels, scores, groups, k)
    ranked, relevant, _ = _binary(labels, scores, groups, threshold)
    return float(_precision(ranked, relevant, k).mean())


def recall_at_k(
    labels: Any, scores: Any, groups: Any, k: int | None = None, threshold: float = 1.0
) -> float:
    """Recall at `k`: a group's relevant items within its top `k`, over all its relevant items.

    Args:
        labels: relevance labels, shape `(N,)`.
        scores: predicted scores, shape `(N,)`.
        groups: the group of each row, shape `(N,)`.
        k: int ≥ 1, the cutoff; None ranks whole groups. Defaults to None.
        threshold: float, labels at or above it are relevant. Defaults to 1.

    Returns:
        The mean over groups, in [0, 1] (a group without relevant items scores 0).

    Raises:
        ValueError: on malformed inputs, as :func:`ndcg`.

    Example:
        >>> recall_at_k([5, 3, 4], [0.9, 0.8, 0.1], [1, 1, 1], k=2, threshold=4)
        0.5
    """
    labels, scores, groups = _check(labels, scores, groups, k)
    ranked, relevant, total = _binary(labels, scores, groups, threshold)
    return float(_safe_divide(_hits(ranked, relevant, k), total).mean())


def ranking_metrics(
    labels: Any, scores: Any, groups: Any, k: int = 10, threshold: float = 4.0
) -> dict[str, float]:
    """All five metrics at once, sharing one sort (the defaults: k=10, relevant from label 4).

    Args:
        labels: graded relevances (e.g. stars), shape `(N,)`; NDCG uses them as gains,
            the binary metrics threshold them.
        scores: predicted scores, shape `(N,)`.
        groups: the group (user) of each row, shape `(N,)`.
        k: int ≥ 1, the cutoff of NDCG, MAP, precision and recall. Defaults to 10.
        threshold: float, labels at or above it are relevant. Defaults to 4.

    Returns:
        `{"ndcg@k", "map@k", "mrr", "precision@k", "recall@k", "groups"}` (with `k`
        spelled out); MRR looks at whole groups.

    Raises:
        ValueError: on malformed inputs, as :func:`ndcg`.

    Example:
        >>> ranking_metrics([5, 3, 4], [0.9, 0.8, 0.1], [1, 1, 1], k=2)["recall@2"]
        0.5
    """
    labels, scores, groups = _check(labels, scores, groups, k)
    ranked, relevant, total = _binary(labels, scores, groups, threshold)
    return {
        f"ndcg@{k}": float(_ndcg(labels, scores, groups, k).mean()),
        f"map@{k}": float(_average_precision(ranked, relevant, total, k).mean()),
        "mrr": float(_reciprocal_rank(ranked, relevant, None).mean()),
        f"precision@{k}": float(_precision(ranked, relevant, k).mean()),
        f"recall@{k}": float(_safe_divide(_hits(ranked, relevant, k), total).mean()),
        "groups": len(ranked.starts),
    }
