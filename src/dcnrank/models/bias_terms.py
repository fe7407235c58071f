"""`BiasTerms`: a global mean plus one learned scalar bias per categorical feature value."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class BiasTerms(nn.Module):
    """`μ + Σ_f b_f[x_f]`: the baseline a rating model's network predicts the residual of.

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
        offsets = torch.tensor([0, *sizes[:-1]], dtype=torch.long).cumsum(0)
        self.register_buffer("offsets", offsets, persistent=False)
        self.register_buffer("global_mean", torch.tensor(float(global_mean)))
        self.bias = nn.Parameter(torch.zeros(sum(sizes)))

    @torch.no_grad()
    def set_global_mean(self, value: float) -> None:
        """Set `μ`, e.g. to the mean training label."""
        self.global_mean.fill_(float(value))

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        if indices.dim() != 2 or indices.shape[1] != len(self.vocabulary_sizes):
            raise ValueError(
                f"`indices` must have shape (B, {len(self.vocabulary_sizes)}). "
                f"Received: indices.shape={tuple(indices.shape)}"
            )
        rows = indices + self.offsets  # (B, F)
        return self.global_mean + self.bias[rows].sum(dim=-1)  # (B,)
