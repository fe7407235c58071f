"""`World`: this process's rank among the training processes and how many there are."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["World"]


@dataclass(frozen=True)
class World:
    """This process's place among the training processes.

    Args:
        rank: int in ``0 … size − 1``; rank 0 writes bundles, checkpoints and logs.
        size: int ≥ 1, the number of processes.
        local_rank: int, the rank on this machine (picks the GPU).

    Example:
        >>> World(0, 1).is_main, World(1, 2).shard(10)
        (True, (5, 10))
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, rows: int) -> tuple[int, int]:
        """This rank's `(start, end)` of `rows` rows cut into `size` contiguous parts as even as possible."""
        base, extra = divmod(rows, self.size)
        start = self.rank * base + min(self.rank, extra)
        return start, start + base + (1 if self.rank < extra else 0)
