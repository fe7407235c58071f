"""Which training rows are held out for validation: the last rows, or a seeded random share.

The one home of the hold-out, for every run: a table read whole, a MovieLens training
split, and a file streamed chunk by chunk.

- ``"last"`` holds out the last ``max(1, round(n · fraction))`` rows: right when the rows
  are in random order already, or when the latest rows should validate. A stream has
  no known last rows, so a streamed run refuses it.
- ``"random"`` decides each row alone, from its number in the table and the seed
  (:func:`held_out`: a SplitMix64 hash of the two, below `fraction`). A row's fate
  does not depend on the other rows, so a table read whole and the same file streamed
  in chunks, in any order and on any rank, hold out the same rows; the share held out
  is `fraction` up to chance (about ``sqrt(n · fraction)`` rows either way).

Either way at least one row must be held out and one left to fit, else a ``ValueError``
names ``data.validation_fraction`` and the row count.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from dcnrank.config.data_config import VALIDATION_POLICIES

__all__ = ["check_held_out", "held_out", "validation_split"]


_MASK64 = (1 << 64) - 1


def _splitmix64(values: np.ndarray) -> np.ndarray:
    """A well-mixed 64-bit hash of each uint64 (Steele et al.'s SplitMix64 finaliser)."""
    with np.errstate(over="ignore"):
        z = values + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def held_out(first_row: int, rows: int, fraction: float, seed: int) -> np.ndarray:
    """Whether the ``"random"`` policy holds out each of the rows ``first_row … first_row + rows − 1``.

    Row ``i`` is held out when ``u(i) < fraction``, where ``u(i)`` in [0, 1) is the top
    53 bits of ``splitmix64(i XOR key(seed))`` and ``key`` is the first 64 bits of
    ``sha256("holdout:<seed>")``. A row's draw depends on its number and the seed only,
    so any slice of the rows gives the same answers as the whole.

    Args:
        first_row: int ≥ 0, the number of the first row (its position in the table or file).
        rows: int ≥ 0, how many rows.
        fraction: float, the chance of each row to be held out.
        seed: int, seeds the draw.

    Returns:
        A bool array of `rows` entries, True for a held-out row.

    Raises:
        ValueError: if `first_row` or `rows` is negative.

    Example:
        >>> held_out(0, 10, 0.2, seed=0).nonzero()[0].tolist()
        [3, 5]
        >>> held_out(4, 3, 0.2, seed=0).tolist()  # rows 4, 5, 6: the same draws as above
        [False, True, False]
        >>> round(float(held_out(0, 100_000, 0.1, seed=0).mean()), 2)
        0.1
    """
    if first_row < 0 or rows < 0:
        raise ValueError(f"`first_row` and `rows` must be ≥ 0. Received: first_row={first_row!r}, rows={rows!r}")
    key = np.uint64(int(hashlib.sha256(f"holdout:{seed}".encode()).hexdigest()[:16], 16) & _MASK64)
    numbers = np.arange(first_row, first_row + rows, dtype=np.uint64) ^ key
    return (_splitmix64(numbers) >> np.uint64(11)).astype(np.float64) / float(1 << 53) < fraction


def check_held_out(rows: int, held: int, fraction: float, *, what: str = "the training split") -> None:
    """Refuse a hold-out that leaves no validation row or no row to fit.

    Args:
        rows: int, the rows the hold-out was drawn from.
        held: int, how many of them it holds out.
        fraction: float, `data.validation_fraction` (echoed in the message).
        what: str, the rows' name in the message (a file, ``"DataFrame"``…).
            Defaults to ``"the training split"``.

    Raises:
        ValueError: unless ``0 < held < rows``, naming `what`, the row count and
            ``data.validation_fraction``.

    Example:
        >>> check_held_out(10, 2, 0.2)
        >>> check_held_out(3, 0, 0.1, what="t.csv")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: t.csv has 3 rows: too few to hold out data.validation_fraction=0.1 for validation ... (0 held out)
    """
    if not 0 < held < rows:
        raise ValueError(
            f"{what} has {rows} rows: too few to hold out data.validation_fraction={fraction} "
            f"for validation and still train ({held} held out)"
        )


def validation_split(
    n: int, fraction: float, policy: str = "last", seed: int = 0, *, what: str = "the training split"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices `(fit, validation)` of `n` training rows, by `policy` (see the module docstring).

    `"last"` holds out the last ``max(1, round(n · fraction))`` rows; `"random"` the rows
    :func:`held_out` draws for rows ``0 … n − 1`` (use it when the rows are sorted, e.g.
    GroupLens' `u1.base`, sorted by user, whose last rows would be users never seen in
    training). Both keep the rows in their order.

    Args:
        n: int, number of training rows.
        fraction: float in (0, 1), the share held out.
        policy: `"last"` (default) or `"random"`.
        seed: int, seeds `"random"`. Defaults to 0.
        what: str, the rows' name in an error message. Defaults to ``"the training split"``.

    Returns:
        Two int64 index tensors, disjoint, sorted, together `0..n-1`.

    Raises:
        ValueError: on an unknown `policy`, a `fraction` outside (0, 1), or a hold-out
            with no validation row or no fit row (:func:`check_held_out`).

    Example:
        >>> [t.tolist() for t in validation_split(5, 0.4)]
        [[0, 1, 2], [3, 4]]
        >>> [t.tolist() for t in validation_split(10, 0.2, "random", seed=0)]  # held_out's rows 3 and 5
        [[0, 1, 2, 4, 6, 7, 8, 9], [3, 5]]
    """
    if policy not in VALIDATION_POLICIES:
        raise ValueError(f"`policy` must be one of {', '.join(VALIDATION_POLICIES)}. Received: policy={policy!r}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"`fraction` must be in (0, 1). Received: fraction={fraction!r}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"`n` must be an int ≥ 0. Received: n={n!r}")
    if policy == "last":
        n_val = max(1, int(round(n * fraction)))
        check_held_out(n, min(n_val, n), fraction, what=what)
        return torch.arange(n - n_val), torch.arange(n - n_val, n)
    mask = held_out(0, int(n), fraction, seed)
    check_held_out(n, int(mask.sum()), fraction, what=what)
    return torch.from_numpy(np.flatnonzero(~mask)), torch.from_numpy(np.flatnonzero(mask))
