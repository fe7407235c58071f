"""A labelled heatmap PNG of a feature × feature matrix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_heatmap(
    matrix: np.ndarray,
    labels: Sequence[str],
    path: str | Path,
    title: str = "",
    annotate: bool = True,
) -> Path:
    """Draw `|matrix|` with a colour bar, every row and column labelled, to a PNG.

    Args:
        matrix: `(F, F)` array.
        labels: `F` feature names, used for rows and columns alike.
        path: output file; its folder is created.
        title: text above the plot.
        annotate: write each cell's value in it.

    Returns:
        The path written.

    Raises:
        ValueError: when the matrix is not square or the labels do not match it.
    """
    matrix = np.abs(np.asarray(matrix, dtype=float))
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"`matrix` must be square. Received: matrix.shape={matrix.shape}")
    if len(labels) != matrix.shape[0]:
        raise ValueError(
            f"`labels` must name each of the {matrix.shape[0]} rows. Received: {len(labels)} labels"
        )
    n = len(labels)
    size = max(4.0, (0.9 if annotate else 0.3) * n + 2.5)  # an annotated cell needs room for its value
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n), labels=list(labels), rotation=45, ha="right")
    ax.set_yticks(range(n), labels=list(labels))
    ax.set_xlabel("output feature j (multiplied by x0_j)")
    ax.set_ylabel("input feature i")
    if annotate:
        threshold = matrix.max() / 2 if matrix.size else 0
        for i in range(n):
            for j in range(n):
                colour = "white" if matrix[i, j] > threshold else "black"
                ax.text(j, i, f"{matrix[i, j]:.2g}", ha="center", va="center", color=colour, fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
