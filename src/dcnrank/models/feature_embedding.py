"""`FeatureEmbedding`: all categorical features looked up in one fused table."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class FeatureEmbedding(nn.Module):
    """Embeds `F` categorical features and concatenates them: `(B, F) -> (B, F·E)`.

    The per-feature tables are stored as one `(Σ vocabulary_sizes, E)` table
    with row offsets, so a batch costs a single gather instead of `F`. The
    result is the same as `F` separate `keras.layers.Embedding` layers
    (initialised `U(-0.05, 0.05)` like Keras') concatenated in feature order.

    Args:
        vocabulary_sizes: sequence of ints, rows of each feature's table,
            including the out-of-vocabulary row 0.
        embedding_dim: int, the size `E` of every embedding.

    Example:
        >>> emb = FeatureEmbedding([4, 3], embedding_dim=2)
        >>> emb(torch.tensor([[0, 2], [3, 1]])).shape
        torch.Size([2, 4])
    """

    offsets: torch.Tensor

    def __init__(self, vocabulary_sizes: Sequence[int], embedding_dim: int) -> None:
        super().__init__()
        sizes = list(vocabulary_sizes)
        if not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
            raise ValueError(
                "`vocabulary_sizes` must be a non-empty sequence of positive ints. "
                f"Received: vocabulary_sizes={sizes!r}"
            )
        if isinstance(embedding_dim, bool) or not isinstance(embedding_dim, int) or embedding_dim < 1:
            raise ValueError(f"`embedding_dim` must be a positive int. Received: embedding_dim={embedding_dim!r}")
        self.vocabulary_sizes = tuple(sizes)
        self.embedding_dim = embedding_dim
        self.num_features = len(sizes)
        offsets = torch.tensor([0, *sizes[:-1]], dtype=torch.long).cumsum(0)
        self.register_buffer("offsets", offsets, persistent=False)
        self.weight = nn.Parameter(torch.empty(sum(sizes), embedding_dim))
        self.reset_parameters()

    @property
    def out_features(self) -> int:
        return self.num_features * self.embedding_dim

    @property
    def categorical_width(self) -> int:
        """How many leading columns of the output are embedding rows: all of them."""
        return self.out_features

    def categorical_tables(self) -> list[torch.Tensor]:
        """The embedding tables whose rows the output holds (`DCN`'s `embedding_l2` penalises them)."""
        return [self.weight]

    def reset_parameters(self) -> None:
        nn.init.uniform_(self.weight, -0.05, 0.05)

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        if indices.dim() != 2 or indices.shape[1] != self.num_features:
            raise ValueError(
                f"`indices` must have shape (B, {self.num_features}). Received: indices.shape={tuple(indices.shape)}"
            )
        rows = indices + self.offsets  # (B, F)
        # F.embedding's backward (a sorted scatter) is ~3x faster than indexing's index_put.
        return nn.functional.embedding(rows, self.weight).flatten(1)  # (B, F, E) -> (B, F·E)

    def table(self, feature: int) -> torch.Tensor:
        """The `(vocabulary_size, E)` rows of one feature."""
        start = int(self.offsets[feature])
        return self.weight[start : start + self.vocabulary_sizes[feature]]
