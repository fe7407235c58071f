"""`Interactions`: which items each user interacted with in the fit rows, stored sparse (CSR)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Interactions"]


@dataclass(frozen=True, eq=False)
class Interactions:
    """The distinct `(owner, member)` pairs of some rows, grouped by owner (CSR).

    Owners are rows of one categorical column's table (e.g. users), members rows of
    another's (e.g. items); the members of owner `u` are
    ``members[indptr[u]:indptr[u + 1]]``, sorted and distinct. Row 0 (out of
    vocabulary) on either side is never stored, so an unknown user has no history.
    Memory is `8·(num_owners + 1) + 4·P` bytes for `P` pairs: it grows with the
    interactions, not with owners × members.

    Args:
        indptr: int64 `(num_owners + 1,)`, non-decreasing from 0 to `P`.
        members: int32 `(P,)`, member rows in `1..num_members - 1`.
        num_members: int ≥ 1, rows of the member table (OOV row included).

    Raises:
        ValueError: if a dtype, shape or range is wrong.

    Example:
        >>> pairs = Interactions.from_pairs(torch.tensor([1, 1, 2, 1]), torch.tensor([3, 1, 1, 3]), 3, 4)
        >>> pairs.indptr.tolist(), pairs.members.tolist()
        ([0, 0, 2, 3], [1, 3, 1])
        >>> pairs.transpose().indptr.tolist(), pairs.transpose().members.tolist()
        ([0, 0, 2, 2, 3], [1, 2, 1])
    """

    indptr: torch.Tensor
    members: torch.Tensor
    num_members: int

    def __post_init__(self) -> None:
        if self.indptr.dtype != torch.int64 or self.indptr.dim() != 1 or len(self.indptr) < 1:
            raise ValueError(
                f"`indptr` must be a non-empty 1-D int64 tensor. Received: {self.indptr.dtype} "
                f"shape={tuple(self.indptr.shape)}"
            )
        if self.members.dtype != torch.int32 or self.members.dim() != 1:
            raise ValueError(
                "`members` must be a 1-D int32 tensor. "
                f"Received: {self.members.dtype} shape={tuple(self.members.shape)}"
            )
        if isinstance(self.num_members, bool) or not isinstance(self.num_members, int) or self.num_members < 1:
            raise ValueError(f"`num_members` must be a positive int. Received: num_members={self.num_members!r}")
        steps = self.indptr.diff()
        if int(self.indptr[0]) != 0 or int(self.indptr[-1]) != len(self.members) or bool((steps < 0).any()):
            raise ValueError(
                f"`indptr` must rise from 0 to len(members)={len(self.members)}. "
                f"Received: {self.indptr[0].item()}..{self.indptr[-1].item()}"
            )
        if len(self.members) and (int(self.members.min()) < 1 or int(self.members.max()) >= self.num_members):
            raise ValueError(
                f"`members` must lie in 1..{self.num_members - 1}. "
                f"Received: {int(self.members.min())}..{int(self.members.max())}"
            )

    @property
    def num_owners(self) -> int:
        """Rows of the owner table (OOV row included)."""
        return len(self.indptr) - 1

    @property
    def nbytes(self) -> int:
        """Bytes held by the two tensors."""
        return self.indptr.numel() * 8 + self.members.numel() * 4

    @classmethod
    def from_pairs(cls, owners: torch.Tensor, members: torch.Tensor, num_owners: int, num_members: int) -> Interactions:
        """Group the pairs `(owners[k], members[k])` by owner; duplicates and OOV (0) pairs dropped.

        Args:
            owners: integer `(P,)`, rows in `0..num_owners - 1`.
            members: integer `(P,)`, rows in `0..num_members - 1`.
            num_owners: int ≥ 1, rows of the owner table.
            num_members: int ≥ 1, rows of the member table.

        Raises:
            ValueError: if the shapes differ or a row is out of range.
        """
        for name, value in (("num_owners", num_owners), ("num_members", num_members)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
        if owners.shape != members.shape or owners.dim() != 1:
            raise ValueError(
                "`owners` and `members` must be 1-D tensors of one length. "
                f"Received: shapes {tuple(owners.shape)} and {tuple(members.shape)}"
            )
        owners, members = owners.long(), members.long()
        for name, values, size in (("owners", owners, num_owners), ("members", members, num_members)):
            if len(values) and (int(values.min()) < 0 or int(values.max()) >= size):
                raise ValueError(
                    f"`{name}` must lie in 0..{size - 1}. Received: {int(values.min())}..{int(values.max())}"
                )
        known = (owners > 0) & (members > 0)
        keys = torch.unique(owners[known] * num_members + members[known])  # sorted: by owner, then member
        counts = torch.bincount(keys // num_members, minlength=num_owners)  # (num_owners,)
        indptr = torch.zeros(num_owners + 1, dtype=torch.int64)
        indptr[1:] = counts.cumsum(0)
        return cls(indptr, (keys % num_members).to(torch.int32), num_members)

    def pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The stored pairs as `(owners, members)`, int64 `(P,)` each, sorted by owner."""
        owners = torch.repeat_interleave(torch.arange(self.num_owners), self.indptr.diff())
        return owners, self.members.long()

    def transpose(self) -> Interactions:
        """The same pairs grouped by member (e.g. the users of each item)."""
        owners, members = self.pairs()
        return Interactions.from_pairs(members, owners, self.num_members, self.num_owners)
