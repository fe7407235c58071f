"""`ItemFeatures`: an item's side features (genres, release-year bucket) as embeddings."""

from __future__ import annotations

import torch
from torch import nn

from dcnrank.data.item_side import NUM_YEAR_BUCKETS
from dcnrank.data.ratings import GENRE_NAMES


class ItemFeatures(nn.Module):
    """Maps an item's vocabulary index to `[genres block, year block]`, `2·E` wide.

    - genres: the mean of the item's genre embeddings,
      `g = (Σ_k h_k · G_k) / max(1, Σ_k h_k)` with `h` the item's multi-hot genres
      (an item without genres, e.g. the OOV row, gets zeros);
    - year: the embedding of the item's release-year bucket (bucket 0: unknown).

    The per-item genres `(num_items, G)` and year buckets `(num_items,)` are
    persistent buffers (saved with the weights), zero until :meth:`set_items`
    fills them from the training data (`dcnrank.data.item_side.item_side_table`).

    Args:
        num_items: int ≥ 1, rows of the item vocabulary (OOV row included).
        embedding_dim: int ≥ 1, `E`.
        num_genres: int ≥ 1. Defaults to MovieLens' 19.
        num_year_buckets: int ≥ 1. Defaults to `NUM_YEAR_BUCKETS`.

    Shape:
        `(B,)` item indices -> `(B, 2·E)`.

    Raises:
        ValueError: if a size is not a positive int, or :meth:`set_items` gets
            tables of the wrong shape.

    Example:
        >>> features = ItemFeatures(num_items=3, embedding_dim=2, num_genres=2, num_year_buckets=2)
        >>> features.set_items(torch.tensor([[0, 0], [1, 1], [1, 0]]), torch.tensor([0, 1, 1]))
        >>> features(torch.tensor([1, 0])).shape
        torch.Size([2, 4])
    """

    item_genres: torch.Tensor
    item_year_bucket: torch.Tensor

    def __init__(
        self,
        num_items: int,
        embedding_dim: int,
        num_genres: int = len(GENRE_NAMES),
        num_year_buckets: int = NUM_YEAR_BUCKETS,
    ) -> None:
        super().__init__()
        for name, value in (
            ("num_items", num_items),
            ("embedding_dim", embedding_dim),
            ("num_genres", num_genres),
            ("num_year_buckets", num_year_buckets),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
        self.embedding_dim = embedding_dim
        self.register_buffer("item_genres", torch.zeros(num_items, num_genres))
        self.register_buffer("item_year_bucket", torch.zeros(num_items, dtype=torch.long))
        self.genre_embedding = nn.Parameter(torch.empty(num_genres, embedding_dim))
        self.year_embedding = nn.Parameter(torch.empty(num_year_buckets, embedding_dim))
        nn.init.uniform_(self.genre_embedding, -0.05, 0.05)
        nn.init.uniform_(self.year_embedding, -0.05, 0.05)

    @property
    def out_features(self) -> int:
        return 2 * self.embedding_dim

    @torch.no_grad()
    def set_items(self, genres: torch.Tensor, year_buckets: torch.Tensor) -> None:
        """Store every item's multi-hot genres `(num_items, G)` and year bucket `(num_items,)`."""
        if tuple(genres.shape) != tuple(self.item_genres.shape):
            raise ValueError(
                f"`genres` must have shape {tuple(self.item_genres.shape)}. Received: shape={tuple(genres.shape)}"
            )
        if tuple(year_buckets.shape) != tuple(self.item_year_bucket.shape):
            raise ValueError(
                f"`year_buckets` must have shape {tuple(self.item_year_bucket.shape)}. "
                f"Received: shape={tuple(year_buckets.shape)}"
            )
        buckets = len(self.year_embedding)
        if len(year_buckets) and (int(year_buckets.min()) < 0 or int(year_buckets.max()) >= buckets):
            raise ValueError(
                f"`year_buckets` must hold buckets in 0..{buckets - 1}. "
                f"Received: range {int(year_buckets.min())}..{int(year_buckets.max())}"
            )
        self.item_genres.copy_(genres.to(self.item_genres.dtype))
        self.item_year_bucket.copy_(year_buckets.long())

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        genres = self.item_genres[items]  # (B, G)
        counts = genres.sum(dim=-1, keepdim=True).clamp(min=1.0)  # (B, 1)
        pooled = genres @ self.genre_embedding / counts  # (B, E)
        year = self.year_embedding[self.item_year_bucket[items]]  # (B, E)
        return torch.cat([pooled, year], dim=-1)  # (B, 2E)
