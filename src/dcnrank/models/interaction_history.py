"""`InteractionHistory`: SVD++-style implicit feedback, the pooled embeddings of what an owner
interacted with, kept as sparse `Interactions` (CSR)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from dcnrank.data.encoding.interactions import Interactions

__all__ = ["InteractionHistory"]


class InteractionHistory(nn.Module):
    """An owner's (e.g. a user's) history: the normalised sum of the embeddings of
    the members (e.g. items) it interacted with in the training rows, leaving out the
    member being scored.

    For owner `u` and scored member `i`, with `N(u)` the members `u` interacted with
    and `y_j` a learned member embedding (SVD++'s implicit factors, Koren 2008):

        `h(u, i) = Σ_{j ∈ N(u), j ≠ i} y_j / sqrt(max(1, |N(u) \\ {i}|))`

    Only *which* members were interacted with is stored, never a label. Leaving the
    scored member out makes a training row look like a validation or test row, whose
    member is never in `N(u)` (the history holds only the rows the model trains on).

    `N` is an `Interactions` (CSR: `indptr` int64 `(num_owners + 1,)`, `members` int32
    `(P,)`) held in two non-persistent buffers (they move with `.to(device)` but are not
    in the state dict: a bundle stores the interactions beside the weights), empty until
    :meth:`set_history` fills it. Memory grows with the interactions `P`, never with
    owners × members. A batch gathers its owners' members (`T` of them) and pools them
    with `embedding_bag` (mode `"sum"`), the scored member weighted 0.

    Args:
        num_owners: int ≥ 1, rows of the owner vocabulary (OOV row included).
        num_members: int ≥ 1, rows of the member vocabulary (OOV row included).
        embedding_dim: int ≥ 1, `E`.

    Shape:
        `(B,)` owner indices and `(B,)` member indices -> `(B, E)`.

    Raises:
        ValueError: if a size is not a positive int, or :meth:`set_history` gets
            interactions of other sizes or pairs of the wrong shape or out of range.

    Example:
        >>> history = InteractionHistory(num_owners=2, num_members=4, embedding_dim=1)
        >>> history.set_history(Interactions.from_pairs(torch.tensor([1, 1, 1]), torch.tensor([1, 2, 3]), 2, 4))
        >>> with torch.no_grad():
        ...     _ = history.member_embedding.copy_(torch.tensor([[0.0], [1.0], [2.0], [3.0]]))
        >>> out = history(torch.tensor([1, 1]), torch.tensor([0, 3]))  # (1+2+3)/√3, (1+2)/√2
        >>> [round(v, 4) for v in out.squeeze(1).tolist()]
        [3.4641, 2.1213]
    """

    indptr: torch.Tensor
    members: torch.Tensor

    def __init__(self, num_owners: int, num_members: int, embedding_dim: int) -> None:
        super().__init__()
        for name, value in (("num_owners", num_owners), ("num_members", num_members), ("embedding_dim", embedding_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
        self.num_owners, self.num_members, self.embedding_dim = num_owners, num_members, embedding_dim
        self.register_buffer("indptr", torch.zeros(num_owners + 1, dtype=torch.int64), persistent=False)
        self.register_buffer("members", torch.zeros(0, dtype=torch.int32), persistent=False)
        self.member_embedding = nn.Parameter(torch.empty(num_members, embedding_dim))
        self.reset_parameters()

    @property
    def out_features(self) -> int:
        return self.embedding_dim

    def reset_parameters(self) -> None:
        """Member embeddings `U(-0.05, 0.05)`, as Keras' embeddings."""
        nn.init.uniform_(self.member_embedding, -0.05, 0.05)

    @property
    def interactions(self) -> Interactions:
        """`N` as `Interactions` (on the CPU)."""
        return Interactions(self.indptr.cpu(), self.members.cpu(), self.num_members)

    @torch.no_grad()
    def set_history(self, interactions: Interactions | torch.Tensor) -> None:
        """Replace `N` by `interactions` (owners × members of this module's sizes).

        Args:
            interactions: an `Interactions`; or
                `(owner, member)` index pairs `(P, 2)`, grouped with
                `Interactions.from_pairs` (duplicates count once, pairs with index 0,
                out of vocabulary, on either side are ignored).

        Raises:
            ValueError: if the sizes differ from the module's, or the pairs are not an
                integer `(P, 2)` tensor within them.
        """
        if isinstance(interactions, torch.Tensor):
            interactions = self._grouped(interactions)
        if interactions.num_owners != self.num_owners or interactions.num_members != self.num_members:
            raise ValueError(
                f"`interactions` must be {self.num_owners} owners × {self.num_members} members. "
                f"Received: {interactions.num_owners} × {interactions.num_members}"
            )
        device = self.member_embedding.device
        self.indptr = interactions.indptr.to(device)
        self.members = interactions.members.to(device)

    def _grouped(self, pairs: torch.Tensor) -> Interactions:
        integer = not (pairs.dtype.is_floating_point or pairs.dtype.is_complex or pairs.dtype == torch.bool)
        if pairs.dim() != 2 or pairs.shape[1] != 2 or not integer:
            raise ValueError(
                "`pairs` must be an integer tensor of shape (P, 2). "
                f"Received: shape={tuple(pairs.shape)}, dtype={pairs.dtype}"
            )
        owners, members = self.num_owners, self.num_members
        if len(pairs) and (
            int(pairs.min()) < 0 or int(pairs[:, 0].max()) >= owners or int(pairs[:, 1].max()) >= members
        ):
            raise ValueError(
                f"`pairs` must hold owners in 0..{owners - 1} and members in 0..{members - 1}. "
                f"Received: owners {int(pairs[:, 0].min())}..{int(pairs[:, 0].max())}, "
                f"members {int(pairs[:, 1].min())}..{int(pairs[:, 1].max())}"
            )
        return Interactions.from_pairs(pairs[:, 0], pairs[:, 1], owners, members)

    def forward(self, owners: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
        starts = self.indptr[owners]  # (B,)
        counts = self.indptr[owners + 1] - starts  # (B,) |N(u)|
        bag_starts = counts.cumsum(0) - counts  # (B,) where each row's members begin in the flat list
        row = torch.repeat_interleave(counts)  # (T,) the batch row of each gathered member
        positions = torch.arange(len(row), device=row.device) - bag_starts[row] + starts[row]  # (T,)
        history = self.members[positions].long()  # (T,) j ∈ N(u)
        others = (history != members[row]).to(self.member_embedding.dtype)  # (T,) 0 where j = i
        pooled = functional.embedding_bag(
            history, self.member_embedding, bag_starts, mode="sum", per_sample_weights=others
        )  # (B, E) Σ_{j ≠ i} y_j
        kept = torch.zeros(len(owners), dtype=others.dtype, device=others.device).index_add(0, row, others)  # (B,)
        return pooled / kept.clamp(min=1.0).sqrt().unsqueeze(1)  # (B, E)
