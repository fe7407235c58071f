"""`BiasTerms`: a global mean plus one learned scalar bias per categorical feature value;
`OutputLevers`, a table model's bias terms and label-range clamp around its network."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from dcnrank.data.encoding.table_batch import TableBatch
from dcnrank.models.feature_embedding import table_offsets

__all__ = ["P_CLAMP", "BiasTerms", "OutputLevers", "label_offset"]


class BiasTerms(nn.Module):
    """`μ + Σ_f b_f[x_f]`: the baseline whose residual a regression model's network predicts.

    With a user and an item feature this is the classic baseline predictor
    `μ + b_user + b_item` (Koren 2008); every other categorical feature gets its
    own bias table too. The bias tables are stored as one fused `(Σ sizes,)`
    vector with row offsets (one gather per batch) and start at zero, so a fresh
    model predicts `μ` plus its network's output. `μ` is a persistent buffer (it
    is saved with the weights), set from the training labels with
    :meth:`set_global_mean`.

    Args:
        vocabulary_sizes: sequence of ints ≥ 1, rows of each feature's table,
            including the out-of-vocabulary row 0.
        global_mean: float, `μ`. Defaults to 0.

    Shape:
        `(B, F)` int64 indices -> `(B,)`.

    Raises:
        ValueError: if `vocabulary_sizes` is empty or holds a non-positive size.

    Example:
        >>> terms = BiasTerms([3, 2], global_mean=3.5)
        >>> with torch.no_grad():
        ...     _ = terms.bias.copy_(torch.tensor([0.0, 0.5, -0.5, 0.0, 0.25]))
        >>> terms(torch.tensor([[1, 1], [2, 0]])).tolist()
        [4.25, 3.0]
    """

    offsets: torch.Tensor
    global_mean: torch.Tensor

    def __init__(self, vocabulary_sizes: Sequence[int], global_mean: float = 0.0) -> None:
        super().__init__()
        sizes = list(vocabulary_sizes)
        if not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
            raise ValueError(
                "`vocabulary_sizes` must be a non-empty sequence of positive ints. "
                f"Received: vocabulary_sizes={sizes!r}"
            )
        self.vocabulary_sizes = tuple(sizes)
        self.register_buffer("offsets", table_offsets(sizes), persistent=False)
        self.register_buffer("global_mean", torch.tensor(float(global_mean)))
        self.bias = nn.Parameter(torch.zeros(sum(sizes)))

    @torch.no_grad()
    def set_global_mean(self, value: float) -> None:
        """Set `μ`, e.g. to the mean training label."""
        self.global_mean.fill_(float(value))

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        return self.global_mean + self.lookup(indices).sum(dim=-1)  # (B,)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Each row's per-feature biases `b_f[x_f]`: `(B, F)` indices -> `(B, F)`.

        Raises:
            ValueError: if `indices` is not `(B, F)`.
        """
        if indices.dim() != 2 or indices.shape[1] != len(self.vocabulary_sizes):
            raise ValueError(
                f"`indices` must have shape (B, {len(self.vocabulary_sizes)}). "
                f"Received: indices.shape={tuple(indices.shape)}"
            )
        return self.bias[indices + self.offsets]  # (B, F)


# The base rate of a binary task is clamped into [P_CLAMP, 1 − P_CLAMP] before its logit.
P_CLAMP = 1e-6


def label_offset(task: str, label_mean: float) -> float:
    """The global offset a table model's bias terms start from: what a model knowing
    nothing about a row predicts.

    - regression and ranking: the fit rows' label mean `μ`;
    - binary: the base-rate logit `log(p / (1 − p))`, `p` the fit rows' share of
      positives clamped into `[1e-6, 1 − 1e-6]` (the model outputs logits).

    Args:
        task: `"regression"`, `"binary"` or `"ranking"` (as regression).
        label_mean: float, the fit rows' label mean (`p` for a binary task).

    Returns:
        The offset.

    Raises:
        ValueError: on another task, a mean that is not finite, or (binary) outside [0, 1].

    Example:
        >>> label_offset("regression", 3.5), round(label_offset("binary", 0.2), 6), round(label_offset("binary", 1.0))
        (3.5, -1.386294, 14)
    """
    if isinstance(label_mean, bool) or not isinstance(label_mean, int | float) or not math.isfinite(label_mean):
        raise ValueError(f"`label_mean` must be a finite number. Received: label_mean={label_mean!r}")
    if task in ("regression", "ranking"):  # a ranking loss ignores a shift; its `mse` starts at the mean
        return float(label_mean)
    if task == "binary":
        if not 0.0 <= label_mean <= 1.0:
            raise ValueError(f"`label_mean` of a binary task must lie in [0, 1]. Received: label_mean={label_mean!r}")
        p = min(max(float(label_mean), P_CLAMP), 1.0 - P_CLAMP)
        return math.log(p / (1.0 - p))
    raise ValueError(f"`task` must be 'regression', 'binary' or 'ranking'. Received: task={task!r}")


class OutputLevers(nn.Module):
    """The output side of a table model's levers: bias terms around the network, and a
    clamp to the training label range in eval mode.

        `y = clamp(offset + Σ_f b_f[x_f] + network(x), low, high)`

    - bias terms (`BiasTerms` over the categorical columns, in `TableBatch.categorical`
      order): `offset` is their `global_mean` (a persistent buffer, see
      :func:`label_offset`), each value of each categorical column has a learned scalar
      `b_f[x_f]`, so the network predicts the residual;
    - clipping (regression): in eval mode the output is clamped to `[low, high]`, the
      fit rows' label range, a persistent `label_range` buffer `(2,)` (unset: no clamp);
      training sees the raw output.

    Both are set after building, from the fit rows, by :meth:`set_label_statistics`.

    Args:
        bias_sizes: the categorical columns' table sizes (OOV row included), or None
            for no bias terms.
        clip: bool, clamp eval-mode outputs to the label range.

    Shape:
        a `TableBatch` of B rows and the network's `(B,)` output -> `(B,)`.

    Raises:
        ValueError: if neither lever is asked for, or as `BiasTerms`.

    Example:
        >>> from dcnrank.data.encoding.table_batch import TableBatch
        >>> levers = OutputLevers([3], clip=True)
        >>> levers.set_label_statistics(offset=3.0, low=1.0, high=5.0)
        >>> with torch.no_grad():
        ...     _ = levers.bias_terms.bias.copy_(torch.tensor([0.0, 1.0, -1.0]))
        >>> batch = TableBatch(torch.tensor([[1], [2]]), torch.zeros(2, 0), torch.zeros(2, 0, dtype=torch.bool))
        >>> network = torch.tensor([2.0, -4.0])
        >>> levers.train()(batch, network).tolist(), levers.eval()(batch, network).tolist()
        ([6.0, -2.0], [5.0, 1.0])
    """

    label_range: torch.Tensor

    def __init__(self, bias_sizes: Sequence[int] | None, clip: bool) -> None:
        super().__init__()
        if not bias_sizes and not clip:
            raise ValueError(
                f"`OutputLevers` needs bias terms or clipping. Received: bias_sizes={bias_sizes!r}, clip={clip!r}"
            )
        self.bias_terms = BiasTerms(bias_sizes) if bias_sizes else None
        self.clip = bool(clip)
        if self.clip:
            self.register_buffer("label_range", torch.tensor([-math.inf, math.inf]))

    @torch.no_grad()
    def set_label_statistics(self, offset: float, low: float, high: float) -> None:
        """Set the bias terms' `offset` and the clamp's `[low, high]` (each lever when present).

        Raises:
            ValueError: if a value is not finite or `low > high`.
        """
        values = {"offset": offset, "low": low, "high": high}
        for name, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"`{name}` must be a finite number. Received: {name}={value!r}")
        if low > high:
            raise ValueError(f"`low` must not exceed `high`. Received: low={low!r}, high={high!r}")
        if self.bias_terms is not None:
            self.bias_terms.set_global_mean(offset)
        if self.clip:
            self.label_range.copy_(torch.tensor([float(low), float(high)]))

    def forward(self, batch: TableBatch, out: torch.Tensor) -> torch.Tensor:
        if self.bias_terms is not None:
            out = out + self.bias_terms(batch.categorical)  # (B,)
        if self.clip and not self.training:
            out = torch.minimum(torch.maximum(out, self.label_range[0]), self.label_range[1])  # (B,)
        return out
