"""A labelled heatmap PNG of a feature × feature matrix."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dcnrank.atomic import replace_file

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Suffixes that name an image format other than PNG: a heatmap written under one would lie.
OTHER_IMAGE_SUFFIXES = frozenset(
    {".eps", ".jpeg", ".jpg", ".pdf", ".pgf", ".ps", ".raw", ".rgba", ".svg", ".svgz", ".tif", ".tiff", ".webp"}
)


def pyplot() -> Any:
    """`matplotlib.pyplot` on the file-only Agg backend, imported on the first plot (it costs a
    training run ≈ 0.5 s and 30 MB of memory it would hold all along)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def check_png_path(path: str | Path, argument: str = "path") -> Path:
    """`path` as a `Path`, refused when it names another image format or a folder.

    The heatmap is written at exactly this path, with or without a `.png` suffix.

    Args:
        path: where the PNG will go.
        argument: the name to report (`"--out"` for the CLI). Defaults to `"path"`.

    Raises:
        ValueError: if the suffix names another image format (`.jpg`, `.pdf`, ...) or
            `path` is an existing folder.

    Example:
        >>> check_png_path("runs/heatmap")
        PosixPath('runs/heatmap')
    """
    path = Path(path)
    if path.suffix.lower() in OTHER_IMAGE_SUFFIXES:
        raise ValueError(
            f"`{argument}` must name a PNG file (the heatmap is a PNG); {path.suffix} names another format. "
            f"Received: {argument}={str(path)!r}"
        )
    if path.is_dir():
        raise ValueError(f"`{argument}` must name a file, not a folder. Received: {argument}={str(path)!r}")
    return path


def plot_heatmap(
    matrix: np.ndarray,
    labels: Sequence[str],
    path: str | Path,
    title: str = "",
    annotate: bool = True,
) -> Path:
    """Draw `|matrix|` with a colour bar, every row and column labelled, to a PNG.

    The PNG is written at exactly `path` (no suffix is added), through a temporary
    sibling renamed into place, so `path` holds the old file or the whole new one.

    Args:
        matrix: `(F, F)` array.
        labels: `F` feature names, used for rows and columns alike.
        path: output file; its folder is created. See `check_png_path`.
        title: text above the plot.
        annotate: write each cell's value in it.

    Returns:
        The path written.

    Raises:
        ValueError: when the matrix is not square, the labels do not match it, or
            `check_png_path` refuses `path`.
    """
    path = check_png_path(path)
    matrix = np.abs(np.asarray(matrix, dtype=float))
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"`matrix` must be square. Received: matrix.shape={matrix.shape}")
    if len(labels) != matrix.shape[0]:
        raise ValueError(f"`labels` must name each of the {matrix.shape[0]} rows. Received: {len(labels)} labels")
    n = len(labels)
    size = max(4.0, (0.9 if annotate else 0.3) * n + 2.5)  # an annotated cell needs room for its value
    fig, ax = pyplot().subplots(figsize=(size + 1.0, size))
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
    return write_png(fig, path)


def write_png(fig: Figure, path: Path) -> Path:
    """Lay `fig` out, write it to `path` as a PNG (replaced atomically) and close it."""
    png = io.BytesIO()
    try:
        fig.tight_layout()
        fig.savefig(png, format="png", dpi=120)
    finally:
        pyplot().close(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, png.getvalue())
    return path
