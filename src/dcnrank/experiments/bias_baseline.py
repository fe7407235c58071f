"""`BiasBaseline`: the user + item bias model `μ + b_u + b_i`, the first baseline of a rating table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BiasBaseline"]


def _codes(name: str, values: np.ndarray, size: int) -> np.ndarray:
    codes = np.asarray(values)
    if codes.ndim != 1 or not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"`{name}` must be a 1-D integer array. Received: dtype={codes.dtype} shape={codes.shape}")
    if len(codes) and (codes.min() < 0 or codes.max() >= size):
        raise ValueError(f"`{name}` must lie in 0..{size - 1}. Received: {codes.min()}..{codes.max()}")
    return codes.astype(np.int64)


@dataclass(frozen=True)
class BiasBaseline:
    """`r̂(u, i) = μ + b_u + b_i`, fitted by regularised alternating least squares (Koren 2008).

    Minimises `Σ (r − μ − b_u − b_i)² + λ_u Σ b_u² + λ_i Σ b_i²` over the training
    rows, `μ` their mean. Each sweep solves one side exactly with the other fixed:

        `b_i = Σ_{u ∈ R(i)} (r_ui − μ − b_u) / (λ_i + |R(i)|)`,
        `b_u = Σ_{i ∈ R(u)} (r_ui − μ − b_i) / (λ_u + |R(u)|)`.

    A user or item without training rows gets bias 0. The defaults (λ_u = 15,
    λ_i = 10, 10 sweeps) are those of Surprise's `BaselineOnly`.

    Args:
        global_mean: `μ`.
        user_bias: float64 `(num_users,)`.
        item_bias: float64 `(num_items,)`.

    Example:
        >>> baseline = BiasBaseline.fit([0, 0, 1], [0, 1, 0], [4.0, 2.0, 3.0], 2, 2, reg_user=0.0, reg_item=0.0)
        >>> round(baseline.global_mean, 4), baseline.predict([0, 1], [0, 0]).round(3).tolist()
        (3.0, [4.0, 3.0])
    """

    global_mean: float
    user_bias: np.ndarray
    item_bias: np.ndarray

    @classmethod
    def fit(
        cls,
        users: np.ndarray | list[int],
        items: np.ndarray | list[int],
        labels: np.ndarray | list[float],
        num_users: int,
        num_items: int,
        *,
        reg_user: float = 15.0,
        reg_item: float = 10.0,
        sweeps: int = 10,
    ) -> BiasBaseline:
        """Fit `μ`, `b_u`, `b_i` on training rows given as user and item codes.

        Args:
            users: int `(N,)`, user codes in `0..num_users - 1`.
            items: int `(N,)`, item codes in `0..num_items - 1`.
            labels: float `(N,)`, the ratings.
            num_users: int ≥ 1, the number of user codes.
            num_items: int ≥ 1, the number of item codes.
            reg_user: float ≥ 0, `λ_u`. Defaults to 15.
            reg_item: float ≥ 0, `λ_i`. Defaults to 10.
            sweeps: int ≥ 1, alternating passes. Defaults to 10.

        Returns:
            The fitted baseline.

        Raises:
            ValueError: if the arrays disagree in length, are empty, hold codes out of
                range or non-finite labels, or a setting is out of range.
        """
        for name, value in (("num_users", num_users), ("num_items", num_items), ("sweeps", sweeps)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
        for name, reg in (("reg_user", reg_user), ("reg_item", reg_item)):
            if not (isinstance(reg, int | float) and reg >= 0):
                raise ValueError(f"`{name}` must be a number ≥ 0. Received: {name}={reg!r}")
        u, i = _codes("users", np.asarray(users), num_users), _codes("items", np.asarray(items), num_items)
        r = np.asarray(labels, dtype=np.float64)
        if not (len(u) == len(i) == len(r)) or len(r) == 0 or not np.isfinite(r).all():
            raise ValueError(
                "`users`, `items` and `labels` must be non-empty, of one length, with finite labels. "
                f"Received: lengths {len(u)}, {len(i)}, {len(r)}"
            )
        mu = float(r.mean())
        user_count = np.bincount(u, minlength=num_users)
        item_count = np.bincount(i, minlength=num_items)
        bu, bi = np.zeros(num_users), np.zeros(num_items)
        for _ in range(sweeps):
            bi = np.bincount(i, weights=r - mu - bu[u], minlength=num_items) / (reg_item + item_count).clip(1e-12)
            bu = np.bincount(u, weights=r - mu - bi[i], minlength=num_users) / (reg_user + user_count).clip(1e-12)
        return cls(mu, bu, bi)

    def predict(self, users: np.ndarray | list[int], items: np.ndarray | list[int]) -> np.ndarray:
        """`μ + b_u + b_i` for each `(users[k], items[k])`, float64 `(N,)`.

        Raises:
            ValueError: if a code is out of range or the lengths differ.
        """
        u = _codes("users", np.asarray(users), len(self.user_bias))
        i = _codes("items", np.asarray(items), len(self.item_bias))
        if len(u) != len(i):
            raise ValueError(f"`users` and `items` must have one length. Received: {len(u)} and {len(i)}")
        return self.global_mean + self.user_bias[u] + self.item_bias[i]
