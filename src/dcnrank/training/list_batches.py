"""`ListBatches`: rows held in memory as lists of one group's rows, a `BatchStream` for ranking losses.

With `lists_per_group = 0` every epoch splits each group's rows, in a fresh random order,
into `⌈n / list_size⌉` lists of near-equal length (dealt round-robin: a group of 11 rows
and lists of 10 makes lists of 6 and 5), so each row appears once per epoch, as in a
pointwise epoch. With `lists_per_group = k ≥ 1`, a group (a query, a user) with more
rows than `list_size` is sampled into `k` lists of `list_size` rows drawn without
replacement (keras-rs' list-wise tutorial). A list shorter than `list_size` is padded
with label −1 (the ranking losses' padding, `dcnrank.training.ranking_losses`). Groups of one row or whose
rows all share one label have nothing to order: they are counted (`skipped`) and left out.

A batch holds `lists_per_batch` lists: its inputs are the rows of its lists, list by list
(`(lists · list_size, ...)`, a padded slot repeating its list's first row, whose score the
label −1 leaves out), its labels `(lists, list_size)`. Each epoch draws its lists from a
generator seeded by `(seed, epoch)`, so an epoch always yields the same batches (a resumed
run redraws them).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dcnrank.world import World

__all__ = ["GroupLists", "ListBatches", "group_lists", "list_loss"]


@dataclass(frozen=True)
class GroupLists:
    """The groups a ranking run trains on: `order` holds the rows of kept groups, group by
    group, `starts`/`sizes` where each kept group lies in it; `skipped_single` and
    `skipped_tied` count the groups left out (one row; all labels equal)."""

    order: np.ndarray
    starts: np.ndarray
    sizes: np.ndarray
    skipped_single: int
    skipped_tied: int

    @property
    def notice(self) -> str | None:
        """The line a user sees when groups were left out, or None."""
        if not (self.skipped_single or self.skipped_tied):
            return None
        return (
            f"ranking: {len(self.sizes)} groups train; left out {self.skipped_single} with one row "
            f"and {self.skipped_tied} whose rows all have the same label (nothing to order)"
        )


def group_lists(groups: np.ndarray, labels: np.ndarray) -> GroupLists:
    """The kept groups of rows `groups` (any values) with `labels`, in order of first appearance.

    Raises:
        ValueError: if `groups` and `labels` differ in length or are empty.

    Example:
        >>> kept = group_lists(np.array([7, 7, 8, 9, 9]), np.array([1.0, 0.0, 1.0, 2.0, 2.0]))
        >>> kept.order.tolist(), kept.skipped_single, kept.skipped_tied
        ([0, 1], 1, 1)
    """
    groups, labels = np.asarray(groups), np.asarray(labels, dtype=np.float64)
    if groups.shape != labels.shape or groups.ndim != 1 or len(groups) == 0:
        raise ValueError(
            f"`groups` and `labels` must be non-empty and aligned. Received: {groups.shape} and {labels.shape}"
        )
    _, first, codes = np.unique(groups, return_index=True, return_inverse=True)
    codes = np.argsort(np.argsort(first))[codes]  # groups numbered by first appearance
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    sorted_labels = labels[order]
    highest = np.maximum.reduceat(sorted_labels, starts)
    lowest = np.minimum.reduceat(sorted_labels, starts)
    single, tied = sizes < 2, (sizes >= 2) & (highest == lowest)
    kept = ~(single | tied)
    rows = order[np.repeat(kept, sizes)]  # `order` holds the groups one after the other
    kept_sizes = sizes[kept]
    kept_starts = np.concatenate([[0], np.cumsum(kept_sizes)[:-1]]) if len(kept_sizes) else kept_sizes
    return GroupLists(rows, kept_starts, kept_sizes, int(single.sum()), int(tied.sum()))


class ListBatches:
    """Rows held in memory as batches of lists, one group's rows per list (a `BatchStream`).

    Under DDP every rank holds all rows and takes its contiguous share of each batch's
    lists, weighted by its share, as `TensorBatches` does with rows.

    Args:
        x: inputs `(N, ...)` (a tensor or a `TableBatch`).
        y: labels `(N,)`, graded (≥ 0).
        groups: `(N,)` group of each row.
        list_size: int ≥ 2, rows per list.
        lists_per_group: int ≥ 0, lists drawn from each group per epoch (0: each group's
            rows split into lists, every row once).
        lists_per_batch: int ≥ 1, lists per batch.
        seed: seeds each epoch's draw.
        world: this process's place among the ranks.

    Raises:
        ValueError: on a bad size, or when no group has two rows with different labels.

    Example:
        >>> x = torch.arange(6.0)
        >>> y, groups = torch.tensor([2.0, 0.0, 1.0, 1.0, 0.0, 3.0]), np.array([1, 1, 1, 2, 2, 3])
        >>> data = ListBatches(x, y, groups, list_size=3, lists_per_group=1, lists_per_batch=2, seed=0, world=World())
        >>> xb, yb, weight = next(data.batches(0, 0))
        >>> tuple(xb.shape), tuple(yb.shape), int((yb < 0).sum()), data.num_batches(0)
        ((6,), (2, 3), 1, 1)
    """

    def __init__(
        self,
        x: Any,
        y: torch.Tensor,
        groups: np.ndarray,
        list_size: int,
        lists_per_group: int,
        lists_per_batch: int,
        seed: int,
        world: World,
    ) -> None:
        sizes = (("list_size", list_size, 2), ("lists_per_group", lists_per_group, 0),
                 ("lists_per_batch", lists_per_batch, 1))  # fmt: skip
        for name, value, low in sizes:
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"`{name}` must be an int ≥ {low}. Received: {name}={value!r}")
        self.kept = group_lists(np.asarray(groups), y.detach().cpu().numpy())
        if len(self.kept.sizes) == 0:
            raise ValueError(
                "ranking needs a group with two rows of different labels. Received: none "
                f"({self.kept.skipped_single} groups of one row, {self.kept.skipped_tied} of equal labels)"
            )
        self.x, self.y, self.world, self.seed = x, y, world, seed
        self.list_size, self.lists_per_group, self.lists_per_batch = list_size, lists_per_group, lists_per_batch

    @property
    def num_lists(self) -> int:
        """Lists per epoch: `lists_per_group` from each kept group (0: `⌈size / list_size⌉`)."""
        if self.lists_per_group == 0:
            return int(self._lists_of_groups().sum())
        return len(self.kept.sizes) * self.lists_per_group

    def _lists_of_groups(self) -> np.ndarray:
        return -(-self.kept.sizes // self.list_size)

    def num_batches(self, epoch: int) -> int:
        return -(-self.num_lists // self.lists_per_batch)

    def draw(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Epoch `epoch`'s lists in batch order: row indices `(lists, list_size)` and the
        mask of the slots that hold a row."""
        rng = np.random.default_rng([self.seed, epoch])
        if self.lists_per_group == 0:
            return self._split(rng)
        size, per_group = self.list_size, self.lists_per_group
        index = np.zeros((self.num_lists, size), dtype=np.int64)
        filled = np.zeros((self.num_lists, size), dtype=bool)
        row = 0
        for start, count in zip(self.kept.starts, self.kept.sizes, strict=True):
            members = self.kept.order[start : start + count]
            take = min(size, int(count))
            keys = rng.random((per_group, int(count)))
            picked = members[np.argsort(keys, axis=1)[:, :take]]  # (per_group, take), without replacement
            index[row : row + per_group, :take] = picked
            index[row : row + per_group, take:] = picked[:, :1]  # padding repeats the list's first row
            filled[row : row + per_group, :take] = True
            row += per_group
        shuffle = rng.permutation(self.num_lists)
        return torch.from_numpy(index[shuffle]), torch.from_numpy(filled[shuffle])

    def _split(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Every kept group's rows in a random order, dealt round-robin into its lists."""
        kept, sizes = self.kept, self.kept.sizes
        lists = self._lists_of_groups()
        group = np.repeat(np.arange(len(sizes)), sizes)
        shuffled = kept.order[np.lexsort((rng.random(len(group)), group))]  # groups stay where they were
        position = np.arange(len(group)) - np.repeat(kept.starts, sizes)
        dealt = np.repeat(lists, sizes)
        first_list = np.concatenate([[0], np.cumsum(lists)[:-1]])
        which, slot = np.repeat(first_list, sizes) + position % dealt, position // dealt
        index = np.zeros((int(lists.sum()), self.list_size), dtype=np.int64)
        filled = np.zeros(index.shape, dtype=bool)
        index[which, slot], filled[which, slot] = shuffled, True
        index = np.where(filled, index, index[:, :1])  # padding repeats the list's first row
        shuffle = rng.permutation(len(index))
        return torch.from_numpy(index[shuffle]), torch.from_numpy(filled[shuffle])

    def batches(self, epoch: int, skip: int) -> Iterator[tuple[Any, torch.Tensor, float]]:
        index, filled = self.draw(epoch)
        per_batch, world = self.lists_per_batch, self.world
        for start in range(skip * per_batch, len(index), per_batch):
            lists = min(per_batch, len(index) - start)
            lo, hi = world.shard(lists)
            rows = index[start + lo : start + hi]  # (lists, list_size)
            labels = self.y[rows.to(self.y.device)].float()
            padded = ~filled[start + lo : start + hi].to(labels.device)
            labels = labels.masked_fill(padded, -1.0)
            yield self.x[rows.flatten().to(self.x.device)], labels, (hi - lo) * world.size / lists

    def fingerprint(self) -> dict[str, Any]:
        """The rows, a hash of labels and groups' order, and the list settings."""
        digest = hashlib.sha256(self.y.detach().cpu().contiguous().numpy().tobytes())
        digest.update(self.kept.order.tobytes())
        return {
            "rows": len(self.y), "labels": digest.hexdigest(), "list_size": self.list_size,
            "lists_per_group": self.lists_per_group, "lists_per_batch": self.lists_per_batch,
        }  # fmt: skip


def list_loss(
    loss_fn: Any, scores: torch.Tensor, labels: torch.Tensor, groups: np.ndarray, list_size: int, lists_per_batch: int
) -> float:
    """The mean of `loss_fn` over the lists of `groups` split as a ranking epoch splits them
    (`lists_per_group = 0`, seed 0, so every call splits alike), batch by batch, weighted by lists.

    Raises:
        ValueError: when no group has two rows of different labels (as `ListBatches`).

    Example:
        >>> from dcnrank.training.ranking_losses import RANKING_LOSSES
        >>> scores, labels = torch.tensor([2.0, 1.0, 0.0, 5.0]), torch.tensor([1.0, 0.0, 1.0, 1.0])
        >>> list_loss(RANKING_LOSSES["pairwise_hinge"], scores, labels, np.array([1, 1, 2, 2]), 2, 8)
        0.0
    """
    lists = ListBatches(scores, labels, groups, list_size, 0, lists_per_batch, seed=0, world=World())
    total = count = 0.0
    with torch.no_grad():
        for list_scores, list_labels, _ in lists.batches(0, 0):
            total += float(loss_fn(list_scores, list_labels)) * len(list_labels)
            count += len(list_labels)
    return total / count
