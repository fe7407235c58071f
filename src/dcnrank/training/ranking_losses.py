"""Ranking losses over padded lists: pairwise (keras-rs' semantics) and listwise (TF-Ranking's).

Every loss takes `(scores, labels)`: scores `(L, S)` or flat `(L·S,)` (a model's outputs
for the rows of `L` lists of `S` slots, list by list), labels `(L, S)` graded relevances
with **−1 in a padded slot** (keras-rs' and TF-Ranking's convention: a label below 0 is
not an item). It returns a scalar, differentiable in the scores, so
`Trainer(loss_fn=RANKING_LOSSES["pairwise_hinge"])` trains on list batches.

Pairwise, as `keras_rs.losses.Pairwise*` with the default reduction
(`"sum_over_batch_size"`): with `s_ij = (s_i − s_j) / temperature` over the valid items
of a list,

    loss = Σ_lists Σ_i Σ_j I(y_i > y_j) · f(s_ij) / (L · S)

- ``pairwise_hinge``: `f(x) = max(0, 1 − x)`;
- ``pairwise_logistic``: `f(x) = log(1 + exp(−x))`;
- ``pairwise_soft_zero_one``: `f(x) = 1 − σ(x)`;
- ``pairwise_mse``: `Σ_{i ≠ j} ((s_i − s_j) − (y_i − y_j))²` over every valid pair (not only
  `y_i > y_j`), over `L · S`.

The denominator counts every slot, padded ones included, as keras divides by the size of
the `(L, S)` tensor of per-item losses.

Pointwise, as a baseline: ``mse``, the mean of `(s_i − y_i)²` over the valid slots (keras-rs'
list-wise tutorial trains its baseline with Keras' `MeanSquaredError` on the lists).

Listwise, one value per list, averaged over the lists that can be ranked (at least one
positive label; a list with none adds 0 and does not count), but ListMLE, averaged over every
list as keras-rs' `ListMLELoss` is (a list of padding adds 0 and counts):

- ``softmax`` (ListNet, TF-Ranking's `SoftmaxLoss`): `−Σ_i (y_i / Σ_j y_j) log softmax(s)_i`;
- ``list_mle``: `Σ_i [log Σ_{k ≥ i} exp(s_π(k)) − s_π(i)]` with `π` the items by
  descending label (ties by slot order);
- ``approx_ndcg`` (TF-Ranking's `ApproxNDCGLoss`, temperature 1): `−ApproxDCG / IDCG`
  with the rank of item `i` smoothed as `1 + Σ_{j ≠ i} σ(s_j − s_i)` and gains `2^y − 1`;
- ``lambda_rank``: the pairwise logistic loss of each pair with `y_i > y_j`, weighted by
  `|ΔNDCG_ij|`, the NDCG the list would gain or lose by swapping `i` and `j` at their
  current ranks (LambdaRank's weights; the ranks are not differentiated), per list
  `Σ w_ij f(s_ij)`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = [
    "PAIRWISE_LOSSES",
    "RANKING_LOSSES",
    "approx_ndcg_loss",
    "as_lists",
    "lambda_rank_loss",
    "list_mle_loss",
    "list_mse_loss",
    "pairwise_loss",
    "softmax_loss",
    "with_pointwise",
]

RankingLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# a padded slot's score inside a softmax or log-sum-exp: exp(−1e9) is 0, and unlike −inf it
# keeps the gradients finite when a whole list is padding
_ABSENT = -1e9


def as_lists(scores: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`(scores (L, S), labels (L, S), valid (L, S))` from flat or list-shaped scores.

    Raises:
        ValueError: if `labels` is not 2-D or the scores do not hold `L · S` values.

    Example:
        >>> s, y, valid = as_lists(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([[1.0, -1.0], [0.0, 2.0]]))
        >>> s.tolist(), valid.tolist()
        ([[1.0, 2.0], [3.0, 4.0]], [[True, False], [True, True]])
    """
    if labels.dim() != 2:
        raise ValueError(f"ranking `labels` must be (lists, slots). Received: labels.shape={tuple(labels.shape)}")
    if scores.numel() != labels.numel():
        raise ValueError(
            "ranking `scores` must hold one value per list slot. "
            f"Received: scores.shape={tuple(scores.shape)}, labels.shape={tuple(labels.shape)}"
        )
    scores = scores.reshape(labels.shape)
    labels = labels.to(scores.dtype)
    return scores, labels, labels >= 0


def _pair_differences(values: torch.Tensor) -> torch.Tensor:
    return values.unsqueeze(-1) - values.unsqueeze(-2)  # (L, S, S): [l, i, j] = v_i − v_j


def _valid_pairs(valid: torch.Tensor) -> torch.Tensor:
    return valid.unsqueeze(-1) & valid.unsqueeze(-2)  # (L, S, S)


def _hinge(x: torch.Tensor) -> torch.Tensor:
    return torch.relu(1.0 - x)


def _logistic(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.softplus(-x)  # log(1 + e^−x), stable


def _soft_zero_one(x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(-x)


PAIRWISE_LOSSES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "pairwise_hinge": _hinge,
    "pairwise_logistic": _logistic,
    "pairwise_soft_zero_one": _soft_zero_one,
}


def pairwise_loss(name: str, temperature: float = 1.0) -> RankingLoss:
    """The pairwise loss `name` (``pairwise_hinge``, ``pairwise_logistic``,
    ``pairwise_soft_zero_one``, ``pairwise_mse``) with keras-rs' semantics.

    Args:
        name: the loss.
        temperature: float > 0, divides the score differences (keras-rs' `temperature`).
            Defaults to 1.

    Raises:
        ValueError: on an unknown name or a temperature that is not positive.

    Example:
        >>> hinge = pairwise_loss("pairwise_hinge")
        >>> float(hinge(torch.tensor([[0.5, 0.0]]), torch.tensor([[1.0, 0.0]])))  # (1 − 0.5) / 2
        0.25
    """
    if name != "pairwise_mse" and name not in PAIRWISE_LOSSES:
        known = ", ".join([*PAIRWISE_LOSSES, "pairwise_mse"])
        raise ValueError(f"`name` must be one of {known}. Received: name={name!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not temperature > 0:
        raise ValueError(f"`temperature` must be a positive number. Received: temperature={temperature!r}")

    def loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        scores, labels, valid = as_lists(scores, labels)
        differences = _pair_differences(scores) / temperature  # (L, S, S)
        pairs = _valid_pairs(valid)
        if name == "pairwise_mse":
            eye = torch.eye(labels.shape[1], dtype=torch.bool, device=labels.device)
            weights = (pairs & ~eye).to(scores.dtype)
            per_pair = (differences - _pair_differences(labels)) ** 2
        else:
            weights = ((_pair_differences(labels) > 0) & pairs).to(scores.dtype)
            per_pair = PAIRWISE_LOSSES[name](differences)
        return (per_pair * weights).sum() / labels.numel()

    loss.__name__ = name
    return loss


def list_mse_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The mean squared error over the valid slots of the lists (pointwise; 0 when none is valid).

    Example:
        >>> float(list_mse_loss(torch.tensor([[1.0, 5.0]]), torch.tensor([[3.0, -1.0]])))
        4.0
    """
    scores, labels, valid = as_lists(scores, labels)
    squared = torch.where(valid, (scores - labels) ** 2, torch.zeros_like(scores))
    return squared.sum() / valid.sum().clamp_min(1).to(scores.dtype)


def with_pointwise(loss: RankingLoss, weight: float) -> RankingLoss:
    """`loss` plus `weight` times :func:`list_mse_loss` (the scores against the labels over
    the valid slots): a ranking loss that also keeps the scores on the labels' scale.

    Example:
        >>> scores, labels = torch.tensor([[1.0, 5.0]]), torch.tensor([[3.0, -1.0]])
        >>> float(with_pointwise(RANKING_LOSSES["softmax"], 0.5)(scores, labels))
        2.0
    """
    if weight == 0:
        return loss

    def combined(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return loss(scores, labels) + weight * list_mse_loss(scores, labels)

    combined.__name__ = f"{loss.__name__}_with_pointwise"
    return combined


def _list_mean(per_list: torch.Tensor, counted: torch.Tensor) -> torch.Tensor:
    """The mean of `per_list` over the lists `counted` (0 when none is)."""
    weights = counted.to(per_list.dtype)
    return (per_list * weights).sum() / weights.sum().clamp_min(1.0)


def softmax_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """ListNet's softmax cross-entropy: `−Σ_i (y_i / Σ_j y_j) log softmax(s)_i` per list.

    Example:
        >>> round(float(softmax_loss(torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 0.0]]))), 4)  # log 2
        0.6931
    """
    scores, labels, valid = as_lists(scores, labels)
    gains = torch.where(valid, labels, torch.zeros_like(labels))  # (L, S)
    total = gains.sum(-1)  # (L,)
    log_p = torch.log_softmax(scores.masked_fill(~valid, _ABSENT), dim=-1)
    log_p = torch.where(valid, log_p, torch.zeros_like(log_p))
    per_list = -(gains * log_p).sum(-1) / total.clamp_min(torch.finfo(scores.dtype).tiny)
    return _list_mean(per_list, total > 0)


def list_mle_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """ListMLE: the negative log-likelihood of the labels' order under Plackett-Luce, averaged over
    every list (keras-rs' `ListMLELoss`, `"sum_over_batch_size"`: a list of padding adds 0 and counts).

    Example:
        >>> # order (0, 1): log(e^1 + e^0) − 1 + log(e^0) − 0
        >>> round(float(list_mle_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 1.0]]))), 4)
        0.3133
    """
    scores, labels, valid = as_lists(scores, labels)
    # descending label, ties by slot order; padded slots last (their label −1 is below every item's)
    order = torch.argsort(labels, dim=-1, descending=True, stable=True)
    ordered = scores.gather(-1, order).masked_fill(~valid.gather(-1, order), _ABSENT)  # (L, S)
    # log Σ_{k ≥ i} exp(s_π(k)): a reversed cumulative logsumexp
    tail = torch.logcumsumexp(ordered.flip(-1), dim=-1).flip(-1)
    kept = valid.gather(-1, order)
    per_item = torch.where(kept, tail - ordered, torch.zeros_like(ordered))
    return per_item.sum(-1).mean()  # over every list, as keras-rs' ListMLELoss (a list of padding adds 0)


def _gains(labels: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    return torch.where(valid, torch.pow(2.0, labels) - 1.0, torch.zeros_like(labels))  # 2^y − 1


def _ideal_dcg(gains: torch.Tensor) -> torch.Tensor:
    best = gains.sort(dim=-1, descending=True).values  # (L, S)
    discounts = torch.log2(torch.arange(2, gains.shape[1] + 2, device=gains.device, dtype=gains.dtype))
    return (best / discounts).sum(-1)  # (L,)


def approx_ndcg_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """`−ApproxNDCG`: NDCG with each rank smoothed as `1 + Σ_{j ≠ i} σ(s_j − s_i)`.

    Example:
        >>> # ranks 1 + σ(−10) ≈ 1 and 1 + σ(10) ≈ 2: the ideal order, NDCG ≈ 1
        >>> round(float(approx_ndcg_loss(torch.tensor([[10.0, 0.0]]), torch.tensor([[1.0, 0.0]]))), 3)
        -1.0
    """
    scores, labels, valid = as_lists(scores, labels)
    gains = _gains(labels, valid)
    beaten_by = torch.sigmoid(-_pair_differences(scores))  # [i, j] = σ(s_j − s_i)
    pairs = _valid_pairs(valid) & ~torch.eye(labels.shape[1], dtype=torch.bool, device=labels.device)
    ranks = 1.0 + (beaten_by * pairs.to(scores.dtype)).sum(-1)  # (L, S)
    dcg = (gains / torch.log2(1.0 + ranks)).sum(-1)
    ideal = _ideal_dcg(gains)
    return _list_mean(-dcg / ideal.clamp_min(torch.finfo(scores.dtype).tiny), ideal > 0)


def lambda_rank_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The pairwise logistic loss weighted by each pair's `|ΔNDCG|` at the current ranks.

    Example:
        >>> # one pair, swapping it moves NDCG from 1 to 1/log2(3) ≈ 0.631: weight 0.369
        >>> round(float(lambda_rank_loss(torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, 0.0]]))), 4)
        0.2558
    """
    scores, labels, valid = as_lists(scores, labels)
    gains = _gains(labels, valid)
    ideal = _ideal_dcg(gains)  # (L,)
    with torch.no_grad():  # the current ranks, by descending score (ties by slot), padded slots last
        masked = scores.detach().masked_fill(~valid, -torch.inf)
        order = torch.argsort(masked, dim=-1, descending=True, stable=True)
        ranks = torch.empty_like(order)
        ranks.scatter_(-1, order, torch.arange(labels.shape[1], device=labels.device).expand_as(order))
        discount = 1.0 / torch.log2(ranks.to(scores.dtype) + 2.0)  # (L, S)
        swap = (_pair_differences(gains) * _pair_differences(discount)).abs()  # |ΔDCG_ij|
        weights = swap / ideal.clamp_min(torch.finfo(scores.dtype).tiny)[:, None, None]
        weights = weights * ((_pair_differences(labels) > 0) & _valid_pairs(valid)).to(scores.dtype)
    per_list = (weights * _logistic(_pair_differences(scores))).sum((-1, -2))
    return _list_mean(per_list, ideal > 0)


RANKING_LOSSES: dict[str, RankingLoss] = {
    "pairwise_hinge": pairwise_loss("pairwise_hinge"),
    "pairwise_logistic": pairwise_loss("pairwise_logistic"),
    "pairwise_soft_zero_one": pairwise_loss("pairwise_soft_zero_one"),
    "pairwise_mse": pairwise_loss("pairwise_mse"),
    "softmax": softmax_loss,
    "list_mle": list_mle_loss,
    "approx_ndcg": approx_ndcg_loss,
    "lambda_rank": lambda_rank_loss,
    "mse": list_mse_loss,
}
