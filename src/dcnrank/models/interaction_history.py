"""`InteractionHistory`: SVD++-style implicit feedback, the pooled embeddings of what an owner rated."""

from __future__ import annotations

import torch
from torch import nn


class InteractionHistory(nn.Module):
    """An owner's (e.g. a user's) history: the normalised sum of the embeddings of
    the members (e.g. items) it interacted with in the training rows, leaving out the
    member being scored.

    For owner `u` and scored member `i`, with `N(u)` the members `u` interacted with
    and `y_j` a learned member embedding (SVD++'s implicit factors, Koren 2008):

        `h(u, i) = Σ_{j ∈ N(u), j ≠ i} y_j / sqrt(max(1, |N(u) \\ {i}|))`

    Only *which* members were interacted with is stored, never a rating. Leaving the
    scored member out makes a training row look like a validation or test row, whose
    member is never in `N(u)` (the history holds only the rows the model trains on).

    `N` is a persistent bool buffer `(num_owners, num_members)` (saved with the
    weights), empty until :meth:`set_history` fills it. Row and column 0 (the
    out-of-vocabulary indices) stay empty, so an unknown owner gets zeros.
    The dense layout costs `num_owners · num_members` bytes (1.6 MB for
    MovieLens 100K) and makes one batch a `(B, M) @ (M, E)` product.

    Args:
        num_owners: int ≥ 1, rows of the owner vocabulary (OOV row included).
        num_members: int ≥ 1, rows of the member vocabulary (OOV row included).
        embedding_dim: int ≥ 1, `E`.

    Shape:
        `(B,)` owner indices and `(B,)` member indices -> `(B, E)`.

    Raises:
        ValueError: if a size is not a positive int, or :meth:`set_history` gets
            pairs of the wrong shape or out of range.

    Example:
        >>> history = InteractionHistory(num_owners=2, num_members=4, embedding_dim=1)
        >>> history.set_history(torch.tensor([[1, 1], [1, 2], [1, 3]]))
        >>> with torch.no_grad():
        ...     _ = history.member_embedding.copy_(torch.tensor([[0.0], [1.0], [2.0], [3.0]]))
        >>> out = history(torch.tensor([1, 1]), torch.tensor([0, 3]))  # (1+2+3)/√3, (1+2)/√2
        >>> [round(v, 4) for v in out.squeeze(1).tolist()]
        [3.4641, 2.1213]
    """

    interacted: torch.Tensor

    def __init__(self, num_owners: int, num_members: int, embedding_dim: int) -> None:
        super().__init__()
        for name, value in (("num_owners", num_owners), ("num_members", num_members), ("embedding_dim", embedding_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
        self.embedding_dim = embedding_dim
        self.register_buffer("interacted", torch.zeros(num_owners, num_members, dtype=torch.bool))
        self.member_embedding = nn.Parameter(torch.empty(num_members, embedding_dim))
        nn.init.uniform_(self.member_embedding, -0.05, 0.05)

    @property
    def out_features(self) -> int:
        return self.embedding_dim

    @torch.no_grad()
    def set_history(self, pairs: torch.Tensor) -> None:
        """Replace `N` by the `(owner, member)` index pairs `(P, 2)` (duplicates count once).

        Pairs with index 0 (out of vocabulary) on either side are ignored.
        """
        owners, members = self.interacted.shape
        integer = not (pairs.dtype.is_floating_point or pairs.dtype.is_complex or pairs.dtype == torch.bool)
        if pairs.dim() != 2 or pairs.shape[1] != 2 or not integer:
            raise ValueError(
                "`pairs` must be an integer tensor of shape (P, 2). "
                f"Received: shape={tuple(pairs.shape)}, dtype={pairs.dtype}"
            )
        pairs = pairs.long().to(self.interacted.device)
        if len(pairs) and (
            int(pairs.min()) < 0 or int(pairs[:, 0].max()) >= owners or int(pairs[:, 1].max()) >= members
        ):
            raise ValueError(
                f"`pairs` must hold owners in 0..{owners - 1} and members in 0..{members - 1}. "
                f"Received: owners {int(pairs[:, 0].min())}..{int(pairs[:, 0].max())}, "
                f"members {int(pairs[:, 1].min())}..{int(pairs[:, 1].max())}"
            )
        self.interacted.zero_()
        self.interacted[pairs[:, 0], pairs[:, 1]] = True
        self.interacted[0, :] = False
        self.interacted[:, 0] = False

    def forward(self, owners: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
        rows = self.interacted[owners].to(self.member_embedding.dtype)  # (B, M)
        rows = rows.scatter(1, members.unsqueeze(1), 0.0)  # (B, M), the scored member left out
        counts = rows.sum(dim=1, keepdim=True).clamp(min=1.0)  # (B, 1)
        return rows @ self.member_embedding / counts.sqrt()  # (B, E)
