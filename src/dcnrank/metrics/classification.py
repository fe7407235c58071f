"""Binary click-through metrics over whole data sets: AUC, log loss and group AUC (GAUC).

Every function takes flat, aligned arrays (numpy arrays, lists or torch tensors), one
entry per impression, and checks its labels with :func:`validate_binary_labels`. AUC
is rank-based (the Mann–Whitney statistic), computed with one `np.lexsort` and
`np.bincount` sums, never by comparing pairs, so it costs `O(N log N)` for any number
of groups.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dcnrank.metrics.ranking import as_1d
from dcnrank.row_messages import ROWS_SHOWN, describe_rows

__all__ = ["auc", "group_auc", "logloss", "validate_binary_labels"]


def _describe_rows(name: str, array: np.ndarray, bad: np.ndarray) -> str:
    """`"2 rows: labels[2]=nan, labels[7]=2"`: how many rows are bad, and the first few."""
    rows = np.flatnonzero(bad)
    return describe_rows(name, rows, array[rows[:ROWS_SHOWN]])


def _numeric(values: Any, name: str) -> np.ndarray:
    array = as_1d(values, name)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"`{name}` must be numeric. Received: {name}.dtype={array.dtype}")
    return array


def _finite(values: Any, name: str) -> np.ndarray:
    array = _numeric(values, name)
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(f"`{name}` must be finite. Received {_describe_rows(name, array, bad)}")
    return array.astype(np.float64)


def validate_binary_labels(labels: Any) -> np.ndarray:
    """Check that every label is 0 or 1, and return them as float64.

    Args:
        labels: `(N,)` labels: bools, ints or floats, as a list, numpy array or tensor.

    Returns:
        The labels as a float64 numpy array of 0.0 and 1.0.

    Raises:
        ValueError: if `labels` is not 1-D or not numeric, or if a label is NaN or
            anything but 0 and 1; the message counts the offending rows and names
            the first few with their values (`labels[4]=nan, labels[9]=2`).

    Example:
        >>> validate_binary_labels([True, False, 1])
        array([1., 0., 1.])
        >>> validate_binary_labels([0, 1, 2, float("nan")])
        Traceback (most recent call last):
        ...
        ValueError: `labels` must be 0 or 1 (not NaN). Received 2 rows: labels[2]=2.0, labels[3]=nan
    """
    array = _numeric(labels, "labels")
    values = array.astype(np.float64)
    bad = ~((values == 0.0) | (values == 1.0))  # NaN compares unequal to both
    if bad.any():
        raise ValueError(f"`labels` must be 0 or 1 (not NaN). Received {_describe_rows('labels', array, bad)}")
    return values


def _aligned(labels: Any, scores: Any, name: str = "scores") -> tuple[np.ndarray, np.ndarray]:
    y = validate_binary_labels(labels)
    s = _finite(scores, name)
    if len(y) != len(s):
        raise ValueError(f"`labels` and `{name}` must have the same length. Received: {len(y)} and {len(s)}")
    if len(y) == 0:
        raise ValueError("`labels` must not be empty. Received: 0 rows")
    return y, s


def _per_group_auc(
    labels: np.ndarray, scores: np.ndarray, group_ids: np.ndarray, num_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group: AUC (NaN without both classes), positives, rows.

    Within a group, `AUC = (R⁺ − n⁺(n⁺+1)/2) / (n⁺ n⁻)`, with `R⁺` the sum of the
    positives' 1-based ranks by ascending score, tied scores sharing their average rank.
    """
    order = np.lexsort((scores, group_ids))  # by group, then ascending score
    g, s, y = group_ids[order], scores[order], labels[order]
    n = len(order)
    position = np.arange(n)
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = g[1:] != g[:-1]
    new_block = new_group.copy()  # a tie block: equal scores within one group
    new_block[1:] |= s[1:] != s[:-1]
    group_start = np.maximum.accumulate(np.where(new_group, position, 0))  # (N,)
    block_starts = np.flatnonzero(new_block)
    block_ends = np.append(block_starts[1:], n)  # exclusive
    block = np.cumsum(new_block) - 1  # (N,) block of each sorted row
    # Positions a..b-1 of a block hold 1-based ranks a-gs+1 .. b-gs within the group.
    rank = (block_starts[block] + block_ends[block] + 1) / 2.0 - group_start  # (N,)
    rows = np.bincount(g, minlength=num_groups).astype(np.float64)
    positives = np.bincount(g, weights=y, minlength=num_groups)
    rank_sum = np.bincount(g, weights=rank * y, minlength=num_groups)
    pairs = positives * (rows - positives)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_group = np.where(pairs > 0, (rank_sum - positives * (positives + 1) / 2.0) / pairs, np.nan)
    return per_group, positives, rows


def auc(labels: Any, scores: Any) -> float:
    """Area under the ROC curve: the chance that a random click outscores a random non-click.

    Rank-based (Mann–Whitney): with `n⁺` clicks, `n⁻` non-clicks and `R⁺` the sum of
    the clicks' 1-based ranks by ascending score,

        AUC = (R⁺ − n⁺(n⁺ + 1)/2) / (n⁺ n⁻)

    Tied scores get their average rank, so a tied (click, non-click) pair counts ½,
    as in `sklearn.metrics.roc_auc_score`.

    Args:
        labels: `(N,)` labels in {0, 1}.
        scores: `(N,)` finite scores, higher meaning more likely a click (logits
            and probabilities give the same AUC).

    Returns:
        The AUC, in [0, 1].

    Raises:
        ValueError: on malformed labels (see :func:`validate_binary_labels`),
            non-finite scores, lengths that differ, no rows, or labels of a
            single class (AUC is undefined).

    Example:
        >>> auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        0.75
    """
    y, s = _aligned(labels, scores)
    per_group, positives, rows = _per_group_auc(y, s, np.zeros(len(y), dtype=np.int64), 1)
    if np.isnan(per_group[0]):
        raise ValueError(
            f"`labels` must hold both classes for AUC. Received: {int(rows[0])} rows, {int(positives[0])} of them 1"
        )
    return float(per_group[0])


def group_auc(labels: Any, scores: Any, groups: Any) -> float:
    """Group AUC (GAUC): the impression-weighted mean of each group's AUC.

    As in DIN (Zhou et al. 2018) and DeepCTR, with `n_g` the impressions (rows) of
    group `g` (e.g. a user) and `AUC_g` its :func:`auc`:

        GAUC = Σ_g n_g · AUC_g / Σ_g n_g

    over the groups holding both a 1 and a 0. A group with a single class has no
    AUC; it is skipped: left out of both sums, so its impressions weigh nothing.

    Args:
        labels: `(N,)` labels in {0, 1}.
        scores: `(N,)` finite scores.
        groups: `(N,)` group of each row, any sortable numpy dtype; groups may
            interleave.

    Returns:
        The GAUC, in [0, 1].

    Raises:
        ValueError: on malformed inputs (as :func:`auc`), `groups` of another
            length, or when no group holds both classes.

    Example:
        Groups a (AUC 1, 2 rows), b (AUC 0, 2 rows), c (AUC ½, 3 rows); d has only a
        click and is skipped: (2·1 + 2·0 + 3·½) / 7 = 0.5.

        >>> group_auc([0, 1, 1, 0, 1, 0, 0, 1], [.1, .9, .2, .3, .5, .4, .6, .7], list("aabbcccd"))
        0.5
    """
    y, s = _aligned(labels, scores)
    groups = as_1d(groups, "groups")
    if len(groups) != len(y):
        raise ValueError(f"`labels` and `groups` must have the same length. Received: {len(y)} and {len(groups)}")
    _, group_ids = np.unique(groups, return_inverse=True)
    num_groups = int(group_ids.max()) + 1
    per_group, _, rows = _per_group_auc(y, s, group_ids.reshape(-1), num_groups)
    scored = ~np.isnan(per_group)
    if not scored.any():
        raise ValueError(
            "no group holds both classes, so GAUC is undefined. "
            f"Received: {num_groups} group{'s' if num_groups != 1 else ''}, each with one class only"
        )
    return float(np.sum(rows[scored] * per_group[scored]) / np.sum(rows[scored]))


def logloss(labels: Any, predictions: Any, from_logits: bool = False, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy (log loss) of labels given probabilities or logits.

    With `p` clipped to `[eps, 1 − eps]` (Keras' epsilon by default) so that a
    confident mistake costs `−log(eps)`, not infinity:

        logloss = −mean(y log p + (1 − y) log(1 − p))

    With `from_logits=True`, `p = σ(z)` and the same clipping is applied to the
    logit `z ∈ [−L, L]`, `L = log((1 − eps) / eps)`, then the loss is computed
    stably as `mean(softplus(z) − y z)`; both paths agree.

    Args:
        labels: `(N,)` labels in {0, 1}.
        predictions: `(N,)` probabilities in [0, 1], or logits with `from_logits`.
        from_logits: bool, whether `predictions` are logits. Defaults to False.
        eps: float in (0, 0.5), the clipping margin. Defaults to 1e-7.

    Returns:
        The mean log loss (natural log), ≥ 0.

    Raises:
        ValueError: on malformed labels, non-finite predictions, probabilities
            outside [0, 1] (naming the first rows), lengths that differ, no rows,
            or `eps` out of range.

    Example:
        >>> round(logloss([1, 0], [0.8, 0.4]), 4)
        0.367
        >>> round(logloss([1, 0], [0.0, 0.0], from_logits=True), 4)
        0.6931
    """
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not 0.0 < eps < 0.5:
        raise ValueError(f"`eps` must be a number in (0, 0.5). Received: eps={eps!r}")
    y, p = _aligned(labels, predictions, "predictions")
    if from_logits:
        bound = np.log((1.0 - eps) / eps)
        z = np.clip(p, -bound, bound)
        return float(np.mean(np.logaddexp(0.0, z) - y * z))
    outside = (p < 0.0) | (p > 1.0)
    if outside.any():
        raise ValueError(
            "`predictions` must be probabilities in [0, 1] (pass from_logits=True for logits). "
            f"Received {_describe_rows('predictions', p, outside)}"
        )
    p = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))
