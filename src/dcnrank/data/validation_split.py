"""Carve a validation slice out of the training rows: the last rows, or a seeded random share."""

from __future__ import annotations

import torch

__all__ = ["VALIDATION_POLICIES", "validation_split"]

VALIDATION_POLICIES = ("last", "random")


def validation_split(n: int, fraction: float, policy: str = "last", seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices `(fit, validation)` of `n` training rows; only training rows are ever involved.

    `"last"` holds out the last `round(n · fraction)` rows (right when the rows are
    already in random order, e.g. the `random` split). `"random"` holds out a seeded
    random share and keeps the fit rows in their original relative order; use it
    when the rows are sorted, e.g. GroupLens' `u1.base`, sorted by user, whose last
    rows would be users never seen in training.

    Args:
        n: int, number of training rows.
        fraction: float in (0, 1), the share held out (at least one row).
        policy: `"last"` (default) or `"random"`.
        seed: int, seeds `"random"`.

    Returns:
        Two int64 index tensors, disjoint, together `0..n-1`.

    Raises:
        ValueError: on an unknown `policy`, a `fraction` outside (0, 1), or too few
            rows to keep one for fitting.

    Example:
        >>> [t.tolist() for t in validation_split(5, 0.4)]
        [[0, 1, 2], [3, 4]]
        >>> fit, val = validation_split(10, 0.3, "random", seed=0)
        >>> len(fit), len(val), sorted(fit.tolist() + val.tolist()) == list(range(10))
        (7, 3, True)
    """
    if policy not in VALIDATION_POLICIES:
        raise ValueError(f"`policy` must be one of {', '.join(VALIDATION_POLICIES)}. Received: policy={policy!r}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"`fraction` must be in (0, 1). Received: fraction={fraction!r}")
    n_val = max(1, int(round(n * fraction)))
    if n - n_val < 1:
        raise ValueError(
            f"the training split has {n} rows: too few to hold out "
            f"data.validation_fraction={fraction} for validation"
        )
    if policy == "last":
        return torch.arange(n - n_val), torch.arange(n - n_val, n)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[n_val:].sort().values, order[:n_val].sort().values
