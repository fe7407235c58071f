"""`Interactions`: which items each user interacted with in the fit rows, stored sparse (CSR)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Interactions"]

# Pairs handled at once while they are placed, sorted and compacted: bounds the temporary
# copies (about 40 bytes a pair of the block: 20 MB).
_BLOCK_BITS = 19
_BLOCK = 1 << _BLOCK_BITS
_ROW_LIMIT = 1 << 31  # rows are stored as int32


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

        A bucket sort, block by block, in the int32 result itself: owners are cut into
        buckets of `⌊2**31 / num_members⌋` consecutive rows, each pair is written as the
        int32 value `(owner − bucket's first owner) · num_members + member` into its
        bucket's slice, and each bucket (or run of small ones) is then sorted and made
        distinct in place. Beside the inputs the work needs the result (4 bytes a pair),
        the CSR's `indptr` and a counter per owner (16 bytes an owner) and one block's
        temporaries (about 20 MB): 20M pairs over 1M owners take about 110 MB on top of
        the caller's tensors.

        Args:
            owners: integer `(P,)`, rows in `0..num_owners - 1`.
            members: integer `(P,)`, rows in `0..num_members - 1`.
            num_owners: int ≥ 1, rows of the owner table.
            num_members: int ≥ 1, rows of the member table.

        Returns:
            The distinct known pairs, grouped by owner.

        Raises:
            ValueError: if the shapes differ, a tensor is not an integer one, a row is
                out of range, or a table has more than 2**31 rows (rows are int32).

        Example:
            >>> Interactions.from_pairs(torch.tensor([2, 0, 2]), torch.tensor([1, 1, 1]), 3, 2).pairs()
            (tensor([2]), tensor([1]))
        """
        for name, value in (("num_owners", num_owners), ("num_members", num_members)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
        if owners.shape != members.shape or owners.dim() != 1:
            raise ValueError(
                "`owners` and `members` must be 1-D tensors of one length. "
                f"Received: shapes {tuple(owners.shape)} and {tuple(members.shape)}"
            )
        for name, values, size in (("owners", owners, num_owners), ("members", members, num_members)):
            if values.dtype.is_floating_point or values.dtype.is_complex or values.dtype == torch.bool:
                raise ValueError(f"`{name}` must be an integer tensor. Received: dtype={values.dtype}")
            if len(values) and (int(values.min()) < 0 or int(values.max()) >= size):
                raise ValueError(
                    f"`{name}` must lie in 0..{size - 1}. Received: {int(values.min())}..{int(values.max())}"
                )
        if num_owners > _ROW_LIMIT or num_members > _ROW_LIMIT:
            raise ValueError(
                f"`num_owners` and `num_members` must be at most 2**31 (rows are stored as int32). "
                f"Received: num_owners={num_owners}, num_members={num_members}"
            )
        owner_rows, member_rows = owners.detach().cpu().numpy(), members.detach().cpu().numpy()
        indptr, grouped = _group(lambda: _known_blocks(owner_rows, member_rows), num_owners, num_members)
        return cls(torch.from_numpy(indptr), torch.from_numpy(grouped), num_members)

    def pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The stored pairs as `(owners, members)`, int64 `(P,)` each, sorted by owner."""
        owners = torch.repeat_interleave(torch.arange(self.num_owners), self.indptr.diff())
        return owners, self.members.long()

    def transpose(self) -> Interactions:
        """The same pairs grouped by member (e.g. the users of each item).

        The same bucket sort as :meth:`from_pairs`, reading this CSR block by block: it
        needs the result and one block's temporaries beside it.

        Example:
            >>> users = Interactions.from_pairs(torch.tensor([1, 1, 2]), torch.tensor([1, 2, 2]), 3, 3)
            >>> users.transpose().pairs()
            (tensor([1, 2, 2]), tensor([1, 1, 2]))
        """
        indptr, members = self.indptr.numpy(), self.members.numpy()

        def blocks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            for start in range(0, len(members), _BLOCK):
                end = min(start + _BLOCK, len(members))
                first, last = np.searchsorted(indptr, [start, end - 1], side="right") - 1
                lengths = np.diff(np.clip(indptr[first : last + 2], start, end))
                owners = np.repeat(np.arange(first, last + 1, dtype=np.int32), lengths)
                yield members[start:end].astype(np.int64), owners

        transposed, owners = _group(blocks, self.num_members, self.num_owners)
        return Interactions(torch.from_numpy(transposed), torch.from_numpy(owners), self.num_owners)


def _known_blocks(owner_rows: np.ndarray, member_rows: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The pairs with both rows known (> 0), a block at a time, as int64 owners and int32 members."""
    for start in range(0, len(owner_rows), _BLOCK):
        owner_block = owner_rows[start : start + _BLOCK]
        member_block = member_rows[start : start + _BLOCK]
        known = owner_block > 0
        known &= member_block > 0
        yield owner_block[known].astype(np.int64, copy=False), member_block[known].astype(np.int32, copy=False)


def _group(
    blocks: Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]], num_owners: int, num_members: int
) -> tuple[np.ndarray, np.ndarray]:
    """The CSR `(indptr, members)` of the distinct pairs `blocks()` yields (see `Interactions.from_pairs`).

    `blocks` is called twice, to count the pairs of each bucket and to place them; it
    yields int64 owners and int32 members, every row ≥ 1 and below its table's size.
    """
    span = min(num_owners, _ROW_LIMIT // num_members)  # owners a bucket holds: its values fit an int32
    num_buckets = -(-num_owners // span)
    bounds = np.zeros(num_buckets + 1, dtype=np.int64)  # each bucket's slice of `grouped`
    for owner_block, _ in blocks():
        bounds[1:] += np.bincount(owner_block // span, minlength=num_buckets)
    np.cumsum(bounds, out=bounds)
    grouped = np.empty(int(bounds[-1]), dtype=np.int32)
    filled = bounds[:-1].copy()  # the next free position of each bucket's slice
    for owner_block, member_block in blocks():
        buckets = owner_block // span
        values = owner_block - buckets * span
        values *= num_members
        values += member_block  # < span · num_members ≤ 2**31
        keys = buckets << _BLOCK_BITS  # sorting values is several times faster than argsort
        keys |= np.arange(len(keys), dtype=np.int64)
        keys.sort()
        order = keys & ((1 << _BLOCK_BITS) - 1)  # positions (a block holds at most 2**_BLOCK_BITS pairs)
        keys >>= _BLOCK_BITS  # the buckets, sorted
        in_block = np.bincount(buckets, minlength=num_buckets)
        starts = np.cumsum(in_block) - in_block  # where each bucket's pairs start in the sorted block
        position = np.arange(len(keys), dtype=np.int64)
        position += (filled - starts)[keys]
        grouped[position] = values[order]
        filled += in_block
        del buckets, values, keys, order, position  # before the next block is read
    counts = np.zeros(num_owners, dtype=np.int64)  # distinct members per owner
    written = 0
    bucket = 0
    while bucket < num_buckets:  # a bucket, or a run of buckets holding at most a block of pairs
        end = int(np.searchsorted(bounds, bounds[bucket] + _BLOCK, side="right")) - 1
        end = min(max(end, bucket + 1), num_buckets)
        low, high = int(bounds[bucket]), int(bounds[end])
        if end == bucket + 1:
            run = grouped[low:high]  # sorted in place
        else:  # key = (owner − run's first owner) · num_members + member
            run = np.repeat(
                np.arange(end - bucket, dtype=np.int64) * (span * num_members), np.diff(bounds[bucket : end + 1])
            )
            run += grouped[low:high]
        run.sort()
        written = _compact(run, grouped, written, counts[bucket * span :], num_members)
        bucket = end
    indptr = np.zeros(num_owners + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    del run  # the last view of `grouped`: it may now shrink in place, with no copy
    grouped.resize(written, refcheck=True)
    return indptr, grouped


def _compact(run: np.ndarray, grouped: np.ndarray, written: int, counts: np.ndarray, num_members: int) -> int:
    """Write the distinct members of the sorted keys `run` to `grouped[written:]`, block by block.

    A key is `owner · num_members + member`, owners counted from `counts[0]`'s; each
    owner's count of distinct members goes to `counts`. `run` may be the slice of
    `grouped` just past `written`: a block is copied before it is written back, and
    never lands past what is still to be read. Returns the new `written`.
    """
    previous = -1
    for start in range(0, len(run), _BLOCK):
        block = run[start : start + _BLOCK]
        keep = _run_starts(block)
        if len(block) and int(block[0]) == previous:
            keep[0] = False
        previous = int(block[-1]) if len(block) else previous
        kept = block[keep].astype(np.int64)  # a copy
        owners = kept // num_members
        kept -= owners * num_members
        grouped[written : written + len(kept)] = kept
        written += len(kept)
        first = np.flatnonzero(_run_starts(owners))
        counts[owners[first]] += np.diff(first, append=len(owners))
    return written


def _run_starts(values: np.ndarray) -> np.ndarray:
    """Whether each value of sorted `values` starts a run of equal ones."""
    starts = np.empty(len(values), dtype=bool)
    if len(values):
        starts[0] = True
        np.not_equal(values[1:], values[:-1], out=starts[1:])
    return starts
