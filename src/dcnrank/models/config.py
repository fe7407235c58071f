"""`DCNConfig`: the frozen description of a DCN's shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STRUCTURES = ("stacked", "parallel", "cross_only", "deep_only")


@dataclass(frozen=True)
class DCNConfig:
    """Everything that fixes a DCN's architecture, apart from its input sizes.

    Args:
        structure: how the cross and deep networks combine: `"stacked"` (cross,
            then deep; the seed's), `"parallel"` (both on the embeddings,
            outputs concatenated), `"cross_only"` or `"deep_only"`.
        embedding_dim: int, size of each feature's embedding. Defaults to 32.
        num_cross_layers: int, cross layers in the cross network. Defaults to 1.
        projection_dim: int or None, low-rank size of the cross kernels.
        diag_scale: float, see `FeatureCross`. Defaults to 0.
        deep_units: tuple of ints, hidden widths of the deep network.
            Defaults to `(192, 192)`, the seed's DCN.
        dropout: float, dropout after each deep layer. Defaults to 0.

    Raises:
        ValueError: on an unknown structure or an inconsistent shape, naming
            the field and echoing the value.

    Example:
        >>> DCNConfig(structure="deep_only", deep_units=(192, 192, 192)).structure
        'deep_only'
    """

    structure: str = "stacked"
    embedding_dim: int = 32
    num_cross_layers: int = 1
    projection_dim: int | None = None
    diag_scale: float = 0.0
    deep_units: tuple[int, ...] = field(default=(192, 192))
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.structure not in STRUCTURES:
            raise ValueError(
                f"`structure` must be one of {', '.join(STRUCTURES)}. "
                f"Received: structure={self.structure!r}"
            )
        object.__setattr__(self, "deep_units", tuple(self.deep_units))
        if self.structure in ("stacked", "parallel", "deep_only") and not self.deep_units:
            raise ValueError(
                f"`deep_units` must not be empty for structure={self.structure!r}. "
                f"Received: deep_units={self.deep_units!r}"
            )

    @property
    def uses_cross(self) -> bool:
        return self.structure != "deep_only"

    @property
    def uses_deep(self) -> bool:
        return self.structure != "cross_only"

    def to_dict(self) -> dict[str, Any]:
        return {
            "structure": self.structure,
            "embedding_dim": self.embedding_dim,
            "num_cross_layers": self.num_cross_layers,
            "projection_dim": self.projection_dim,
            "diag_scale": self.diag_scale,
            "deep_units": list(self.deep_units),
            "dropout": self.dropout,
        }
