"""`FeatureEmbedding`: all categorical features looked up in one fused table."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn


def table_offsets(sizes: Sequence[int]) -> torch.Tensor:
    """Each table's first row in a fused table of `sizes` rows: `[0, s0, s0 + s1, ...]`, int64.

    Summed in Python, not with `Tensor.cumsum`: on the meta device (a bundle's shape check
    builds its model there) `cumsum` runs torch's Python reference, whose first call
    imports sympy and took 1.8-3.5 s of every `dcnrank train` and bundle load.

    Example:
        >>> table_offsets([4, 3, 2]).tolist()
        [0, 4, 7]
    """
    return torch.tensor(list(itertools.accumulate(sizes[:-1], initial=0)), dtype=torch.long)


class FeatureEmbedding(nn.Embedding):
    """Embeds `F` categorical features and concatenates them: `(B, F) -> (B, F·E)`.

    The per-feature tables are stored as one `(Σ vocabulary_sizes, E)` table
    with row offsets, so a batch costs a single gather instead of `F`. The
    result is the same as `F` separate `keras.layers.Embedding` layers
    (initialised `U(-0.05, 0.05)` like Keras') concatenated in feature order.
    It is an `nn.Embedding` over the fused table, so `sparse = True` makes its
    gradient the rows looked up, which DDP then all-reduces as sparse
    (`dcnrank.training.embedding_updates`).

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
        sizes = list(vocabulary_sizes)
        if not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
            raise ValueError(
                "`vocabulary_sizes` must be a non-empty sequence of positive ints. "
                f"Received: vocabulary_sizes={sizes!r}"
            )
        if isinstance(embedding_dim, bool) or not isinstance(embedding_dim, int) or embedding_dim < 1:
            raise ValueError(f"`embedding_dim` must be a positive int. Received: embedding_dim={embedding_dim!r}")
        super().__init__(sum(sizes), embedding_dim)  # calls reset_parameters
        self.vocabulary_sizes = tuple(sizes)
        self.num_features = len(sizes)
        self.register_buffer("offsets", table_offsets(sizes), persistent=False)
        self._looked_up: torch.Tensor | None = None  # the last training lookup's rows, with sparse gradients

    @property
    def out_features(self) -> int:
        return self.num_features * self.embedding_dim

    @property
    def categorical_width(self) -> int:
        """How many leading columns of the output are embedding rows: all of them."""
        return self.out_features

    def categorical_embeddings(self) -> list[FeatureEmbedding]:
        """The embeddings whose rows the output holds (`DCN`'s `embedding_l2` penalises them): itself."""
        return [self]

    def square_sum(self) -> torch.Tensor:
        """`Σ ||E_r||²` over the table; with sparse gradients, over the distinct rows of the last
        training lookup instead, so that an L2 penalty on the table keeps its gradient to the
        rows a batch touched (a lazy penalty: a row is shrunk on the steps that look it up).

        Example:
            >>> emb = FeatureEmbedding([3], embedding_dim=1)
            >>> _ = torch.nn.init.ones_(emb.weight)
            >>> emb.sparse = True
            >>> _ = emb(torch.tensor([[2], [2]]))
            >>> emb.square_sum().item(), emb.eval().square_sum().item()
            (1.0, 3.0)
        """
        rows = self._looked_up
        if not (self.sparse and self.training) or rows is None:
            return self.weight.square().sum()
        return nn.functional.embedding(rows.unique(), self.weight, sparse=True).square().sum()

    def reset_parameters(self) -> None:
        nn.init.uniform_(self.weight, -0.05, 0.05)

    def extra_repr(self) -> str:
        return f"vocabulary_sizes={list(self.vocabulary_sizes)}, embedding_dim={self.embedding_dim}"

    def forward(self, indices: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if indices.dim() != 2 or indices.shape[1] != self.num_features:
            raise ValueError(
                f"`indices` must have shape (B, {self.num_features}). Received: indices.shape={tuple(indices.shape)}"
            )
        rows = indices + self.offsets  # (B, F)
        if self.sparse and self.training:
            self._looked_up = rows
        # F.embedding's backward (a sorted scatter) is ~3x faster than indexing's index_put.
        return nn.functional.embedding(rows, self.weight, sparse=self.sparse).flatten(1)  # (B, F, E) -> (B, F·E)

    def table(self, feature: int) -> torch.Tensor:
        """The `(vocabulary_size, E)` rows of one feature."""
        start = int(self.offsets[feature])
        return self.weight[start : start + self.vocabulary_sizes[feature]]
