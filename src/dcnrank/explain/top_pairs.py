"""The strongest feature pairs of an interaction matrix, each pair counted once."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def top_pairs(matrix: np.ndarray, labels: Sequence[str], k: int = 5) -> list[tuple[str, str, float]]:
    """The `k` feature pairs `{i, j}`, `i ≠ j`, of largest weight `M_ij + M_ji`, strongest first.

    In an interaction matrix `M` (:func:`interaction_matrix`) entry `(i, j)` weighs
    `x_i × x0_j`; in the first cross layer `x = x0`, so `x_i × x0_j` and
    `x_j × x0_i` are the same product and a pair's weight is their sum. The
    diagonal (a feature with itself) is left out. Ties keep row-major order.

    Args:
        matrix: `(F, F)` array, `F ≥ 2`.
        labels: `F` feature names, in the matrix's order.
        k: int ≥ 1, how many pairs; fewer come back when `F (F - 1) / 2 < k`.

    Returns:
        `(label_i, label_j, weight)` tuples with `i < j`.

    Raises:
        ValueError: when the matrix is not square with at least 2 rows, the
            labels do not match it, or `k` is not a positive int.

    Example:
        >>> top_pairs(np.array([[9.0, 1.0, 0.0], [2.0, 9.0, 4.0], [0.0, 0.5, 9.0]]), ["a", "b", "c"], k=2)
        [('b', 'c', 4.5), ('a', 'b', 3.0)]
    """
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 2:
        raise ValueError(f"`matrix` must be square with at least 2 rows. Received: matrix.shape={matrix.shape}")
    if len(labels) != matrix.shape[0]:
        raise ValueError(f"`labels` must name each of the {matrix.shape[0]} rows. Received: {len(labels)} labels")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"`k` must be a positive int. Received: k={k!r}")
    rows, cols = np.triu_indices(len(labels), k=1)
    weights = matrix[rows, cols] + matrix[cols, rows]
    order = np.argsort(-weights, kind="stable")[:k]
    return [(labels[rows[n]], labels[cols[n]], float(weights[n])) for n in order]
