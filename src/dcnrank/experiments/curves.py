"""A PNG of per-epoch validation curves, with flat lines for baselines that have no epochs."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from dcnrank.explain.heatmap import check_png_path, pyplot, write_png

__all__ = ["plot_curves"]


def plot_curves(
    curves: Mapping[str, Sequence[float]],
    path: str | Path,
    *,
    baselines: Mapping[str, float] | None = None,
    metric: str = "validation RMSE",
    title: str = "",
) -> Path:
    """Write one line per curve (`value` against epoch 1, 2, ...), its best epoch marked.

    Args:
        curves: label -> the metric after each epoch (lower is better); at least one
            curve, each with at least one finite value.
        path: the PNG to write (replaced atomically).
        baselines: label -> a value drawn as a dashed horizontal line. Defaults to none.
        metric: the y axis label. Defaults to ``"validation RMSE"``.
        title: the plot's title. Defaults to none.

    Returns:
        The PNG's path.

    Raises:
        ValueError: if there is no curve, a curve has no finite value, or `path`
            names another image format or a folder.

    Example:
        >>> import tempfile
        >>> png = plot_curves({"seed": [0.95, 0.94, 0.96]}, tempfile.mkdtemp() + "/c.png", baselines={"bias": 0.95})
        >>> png.read_bytes()[:4]
        b'\\x89PNG'
    """
    path = check_png_path(path)
    if not curves:
        raise ValueError("`curves` must hold at least one curve. Received: {}")
    for label, values in curves.items():
        if not any(math.isfinite(v) for v in values):
            raise ValueError(f"`curves[{label!r}]` must hold a finite value. Received: {list(values)[:10]!r}")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    try:
        for label, values in curves.items():
            epochs = range(1, len(values) + 1)
            line = ax.plot(epochs, values, marker="o", markersize=3, label=label)[0]
            best = min(range(len(values)), key=lambda k: values[k] if math.isfinite(values[k]) else math.inf)
            ax.plot([best + 1], [values[best]], marker="*", markersize=12, color=line.get_color())
        last = max(len(values) for values in curves.values())
        for label, value in (baselines or {}).items():  # labelled at the right, clear of the early epochs
            ax.axhline(value, linestyle="--", linewidth=1, color="grey")
            ax.annotate(label, (last, value), textcoords="offset points", xytext=(0, 3), fontsize=8, color="grey",
                        ha="right")  # fmt: skip
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        if title:
            ax.set_title(title)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    except BaseException:
        plt.close(fig)
        raise
    return write_png(fig, path)
