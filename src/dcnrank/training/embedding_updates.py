"""Sparse embedding updates: an embedding table's gradient as the rows a batch looked up,
and the optimizer rules that update only those rows (row-wise AdamW, row-wise Adagrad).

With dense gradients every step writes every row of every table (a `(rows, E)` gradient,
then AdamW over all of it), so a step's cost grows with the vocabulary. With sparse ones
(`train.embedding_updates`), `nn.Embedding`, `nn.EmbeddingBag` and `FeatureEmbedding`
(a subclass of `nn.Embedding`) return their gradient as a sparse COO tensor of the rows
looked up, DDP all-reduces it as such, and `KerasAdamW` updates those rows only:

- `adamw`, :func:`adamw_rows_`: AdamW's maths on the touched rows, lazily caught up. A
  row last updated at step `τ` and touched again at step `t` first gets, in closed form,
  what the `k = t − 1 − τ` steps without a gradient would have done to it in the dense
  rule: its moments decay (`m ← β1ᵏ m`, `v ← β2ᵏ v`, exact), its weight decays by the
  product of those steps' `(1 − lr · weight_decay)` (exact), and it moves by the momentum
  it carried, `α_t · m / (√v + ε) · Σ_{j=1..k} rʲ` with `r = β1 / √β2` (the dense rule's
  movement with ε and the bias correction held at step `t`: an approximation). Then the
  step's own update is the dense rule's. A row touched at every step is updated exactly
  as by the dense rule; a test compares the two on rows touched now and then.
- `rowwise_adagrad`, :func:`rowwise_adagrad_`: TorchRec's row-wise Adagrad, one
  accumulator per row: `s ← s + mean_e(g²)`, `θ ← θ − lr · g / (√s + ε)`, no weight
  decay. Rows without a gradient are left alone, so dense and sparse gradients give the
  same update.

Bias terms, numeric blocks and histories keep dense gradients (small, or not lookups).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import nn

from dcnrank.config.train_config import EMBEDDING_OPTIMIZERS, EMBEDDING_UPDATES

__all__ = [
    "EMBEDDING_OPTIMIZERS",
    "EMBEDDING_UPDATES",
    "SPARSE_ROWS_PER_LOOKUP",
    "adamw_catch_up_",
    "adamw_rows_",
    "embedding_modules",
    "lookups_per_row",
    "rowwise_adagrad_",
    "set_sparse_gradients",
    "wants_sparse",
]

# "auto" turns sparse updates on when the tables hold more than this many rows per row a
# batch looks up (benchmarks/vocab_curve.py measures where sparse steps start to pay)
SPARSE_ROWS_PER_LOOKUP = 2.0
# rows of a table caught up at a time at an epoch's end (:func:`adamw_catch_up_`)
CATCH_UP_ROWS = 65536


def embedding_modules(model: nn.Module) -> Iterator[nn.Embedding | nn.EmbeddingBag]:
    """The lookup tables of `model` that can return sparse gradients, in module order."""
    for module in model.modules():
        if isinstance(module, nn.Embedding | nn.EmbeddingBag):
            yield module


def lookups_per_row(module: nn.Embedding | nn.EmbeddingBag) -> int:
    """Rows of `module` one input row looks up: its features for a `FeatureEmbedding`, else 1
    (an `nn.EmbeddingBag` is counted as one lookup per row)."""
    return int(getattr(module, "num_features", 1))


def set_sparse_gradients(model: nn.Module, sparse: bool) -> list[torch.Tensor]:
    """Make every lookup table of `model` return sparse (or dense) gradients; returns their weights.

    Example:
        >>> model = nn.Sequential(nn.Embedding(10, 2))
        >>> [tuple(w.shape) for w in set_sparse_gradients(model, True)], model[0].sparse
        ([(10, 2)], True)
    """
    tables = []
    for module in embedding_modules(model):
        module.sparse = sparse
        tables.append(module.weight)
    return tables


def wants_sparse(updates: str, table_rows: int, lookups_per_batch: int, penalises_tables: bool = False) -> bool:
    """Whether `train.embedding_updates = updates` means sparse gradients for tables of
    `table_rows` rows when a batch looks up `lookups_per_batch` rows (rows × columns).

    `"auto"` is sparse when the tables hold more than `SPARSE_ROWS_PER_LOOKUP` rows per
    lookup (a step can touch only part of them; benchmarks/vocab_curve.py: sparse steps
    are as fast as dense ones from about one row per lookup, and flat in the rows) and the
    model has no L2 penalty on its whole tables (`penalises_tables`: `model.embedding_l2`
    with scope `"table"`). That penalty gives every row a gradient every step, and under
    AdamW it pulls each row that a batch does not look up towards zero at about the learning
    rate a step; a sparse update keeps it to the rows looked up, a weaker regulariser
    (docs/benchmarks.md: 300,000 Criteo-like rows, validation AUC 0.7990 sparse against
    0.8040 dense, 0.7995 dense without the penalty).

    Example:
        >>> wants_sparse("auto", 10_000_000, 4096 * 39), wants_sparse("auto", 2_000, 256 * 5)
        (True, False)
        >>> wants_sparse("auto", 10_000_000, 4096 * 39, penalises_tables=True), wants_sparse("sparse", 10, 99)
        (False, True)
    """
    if updates not in EMBEDDING_UPDATES:
        raise ValueError(f"`embedding_updates` must be one of {', '.join(EMBEDDING_UPDATES)}. Received: {updates!r}")
    if updates == "auto":
        return not penalises_tables and table_rows > SPARSE_ROWS_PER_LOOKUP * lookups_per_batch
    return updates == "sparse"


def _rows(grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
    """`(row indices, their summed gradients)` of a sparse gradient; `(None, grad)` of a dense one."""
    if not grad.is_sparse:
        return None, grad
    grad = grad.coalesce()  # duplicate rows (a value looked up twice) summed
    return grad.indices()[0], grad.values()


def _take(tensor: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
    return tensor if rows is None else tensor.index_select(0, rows)


def _put(tensor: torch.Tensor, rows: torch.Tensor | None, values: torch.Tensor) -> None:
    if rows is None:
        tensor.copy_(values)
    else:
        tensor.index_copy_(0, rows, values)


def _adamw_state(param: torch.Tensor, state: dict) -> None:
    if "m" not in state:
        state["m"], state["v"] = torch.zeros_like(param), torch.zeros_like(param)
        state["last"] = torch.zeros(len(param), dtype=torch.int64, device=param.device)
        state["decay_at"] = torch.zeros(len(param), dtype=torch.float64, device=param.device)
        state["decay"] = torch.zeros((), dtype=torch.float64, device=param.device)


def _alpha(step: int, group: dict) -> float:
    """AdamW's step size at step `step` (from 1), with its bias correction."""
    return group["lr"] * math.sqrt(1.0 - group["beta_2"] ** step) / (1.0 - group["beta_1"] ** step)


def _caught_up(
    p: torch.Tensor, m: torch.Tensor, v: torch.Tensor, missed: torch.Tensor, behind: torch.Tensor | None,
    alpha: float, group: dict,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows `p` with moments `m`, `v` after `missed` `(n, 1)` steps without a gradient (module
    docstring), their weight decay factor over those steps `behind` `(n, 1)` (None: no decay)."""
    b1, b2 = group["beta_1"], group["beta_2"]
    r = b1 / math.sqrt(b2) if b2 > 0 else 0.0  # β2 = 0 keeps no second moment to divide by: no drift
    momentum = missed if r == 1.0 else r * (1.0 - r**missed) / (1.0 - r)  # Σ_{j=1..k} rʲ, (n, 1)
    p = p - (alpha * momentum).to(p.dtype) * m / (v.sqrt() + group["epsilon"])
    if behind is not None:
        p = p * behind.to(p.dtype)
    return p, m * (b1**missed).to(m.dtype), v * (b2**missed).to(v.dtype)


@torch.no_grad()
def adamw_rows_(param: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
    """One lazily caught-up AdamW step (module docstring) of the rows in `grad` (sparse or dense).

    `state` holds `step` (this step's number, from 1, already counted), `m`, `v`, and per
    row `last` (the step up to which it is updated, 0 for none) and `decay_at` (the running
    log-decay `Σ log(1 − lr · weight_decay)` at that step), plus the running `decay`
    itself; all are created on the first call.

    Example:
        >>> w = torch.zeros(4, 1); state = {"step": 1}
        >>> group = dict(lr=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=0.0)
        >>> g = torch.sparse_coo_tensor(torch.tensor([[2]]), torch.tensor([[1.0]]), (4, 1), check_invariants=True)
        >>> adamw_rows_(w, g, state, group); [round(x, 4) for x in w.flatten().tolist()]
        [0.0, 0.0, -0.1, 0.0]
    """
    _adamw_state(param, state)
    rows, g = _rows(grad)
    t, b1, b2, wd = state["step"], group["beta_1"], group["beta_2"], group["weight_decay"]
    alpha = _alpha(t, group)
    p, m, v = _take(param, rows), _take(state["m"], rows), _take(state["v"], rows)
    missed = (t - 1 - _take(state["last"], rows)).clamp(min=0).to(torch.float64).unsqueeze(1)  # (n, 1)
    if bool((missed > 0).any()):
        behind = (state["decay"] - _take(state["decay_at"], rows)).exp().unsqueeze(1) if wd else None
        p, m, v = _caught_up(p, m, v, missed, behind, alpha, group)
    if wd:
        state["decay"] += math.log1p(-group["lr"] * wd)
        p = p * (1.0 - group["lr"] * wd)
    m = m.lerp(g, 1.0 - b1)
    v = v * b2 + g.square() * (1.0 - b2)
    p = p - alpha * m / (v.sqrt() + group["epsilon"])
    _put(param, rows, p)
    _put(state["m"], rows, m)
    _put(state["v"], rows, v)
    if rows is None:
        state["last"].fill_(t)
        state["decay_at"].copy_(state["decay"].expand_as(state["decay_at"]))
    else:
        state["last"].index_fill_(0, rows, t)
        state["decay_at"].index_fill_(0, rows, float(state["decay"]))


@torch.no_grad()
def adamw_catch_up_(param: torch.Tensor, state: dict, group: dict) -> None:
    """Bring every row of `param` up to the last step, as if the steps since its last update
    had had no gradient (the catch-up of :func:`adamw_rows_`, for all rows at once).
    `Trainer.fit` calls it at the end of every epoch, before validation and checkpoints, so
    the model holds what the dense rule's momentum would have done by then. A no-op before
    the first step.

    Example:
        >>> w = torch.zeros(2, 1); state = {"step": 1}
        >>> group = dict(lr=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=0.0)
        >>> g = torch.sparse_coo_tensor(torch.tensor([[0]]), torch.ones(1, 1), (2, 1), check_invariants=True)
        >>> adamw_rows_(w, g, state, group)
        >>> state["step"] = 2; adamw_catch_up_(w, state, group)  # a step 2 without a gradient
        >>> [round(x, 4) for x in w.flatten().tolist()]  # the dense rule: -0.1 - 0.0670
        [-0.167, 0.0]
    """
    if "m" not in state:
        return
    t = state["step"]
    alpha = _alpha(t, group)
    for start in range(0, len(param), CATCH_UP_ROWS):  # in slices: a few MB of temporaries, not the table's size
        rows = slice(start, start + CATCH_UP_ROWS)
        missed = (t - state["last"][rows]).to(torch.float64).unsqueeze(1)  # (n, 1)
        if not bool((missed > 0).any()):
            continue
        behind = None
        if group["weight_decay"]:
            behind = (state["decay"] - state["decay_at"][rows]).exp().unsqueeze(1)
        p, m, v = _caught_up(param[rows], state["m"][rows], state["v"][rows], missed, behind, alpha, group)
        param[rows], state["m"][rows], state["v"][rows] = p, m, v
        state["last"][rows] = t
        state["decay_at"][rows] = state["decay"]


@torch.no_grad()
def rowwise_adagrad_(param: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
    """One row-wise Adagrad step (module docstring) of the rows in `grad` (sparse or dense).

    `state["sum"]` holds each row's accumulator (created at zero on the first call).

    Example:
        >>> w = torch.zeros(3, 2); state = {}
        >>> g = torch.sparse_coo_tensor(torch.tensor([[1]]), torch.tensor([[3.0, 4.0]]), (3, 2), check_invariants=True)
        >>> rowwise_adagrad_(w, g, state, dict(lr=0.1, epsilon=0.0)); [round(x, 4) for x in w[1].tolist()]  # s = 12.5
        [-0.0849, -0.1131]
    """
    if "sum" not in state:
        state["sum"] = torch.zeros(len(param), dtype=param.dtype, device=param.device)
    rows, g = _rows(grad)
    flat = g.reshape(len(g), -1)
    total = _take(state["sum"], rows) + flat.square().mean(dim=1)  # (n,)
    step = flat * (group["lr"] / (total.sqrt() + group["epsilon"])).unsqueeze(1)  # (n, E)
    _put(state["sum"], rows, total)
    if rows is None:
        param.sub_(step.view_as(param))
    else:
        param.index_add_(0, rows, step.view(len(rows), *param.shape[1:]), alpha=-1.0)
