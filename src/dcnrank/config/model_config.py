"""`DCNConfig`: the frozen description of a DCN's shape."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dcnrank.config.rules import Rule, at_least, half_open

__all__ = [
    "CROSS_TYPES",
    "DEEP_NORMS",
    "EMBEDDING_L2_SCOPES",
    "LEVER_FLAGS",
    "MAX_NUMERIC_BUCKETS",
    "RULES",
    "STRUCTURES",
    "DCNConfig",
    "cross_options_problem",
]

STRUCTURES = ("stacked", "parallel", "cross_only", "deep_only")
# "matrix": FeatureCross (DCN-V2), "vector": VectorCross (DCN v1), "mixture": MixtureCross (DCN-Mix)
CROSS_TYPES = ("matrix", "vector", "mixture")
# the bool levers of the recipe (docs/recipe.md); a table model keeps those its spec allows (`table_levers`)
LEVER_FLAGS = ("use_bias_terms", "clip_output", "user_history", "item_history")
# the normalisation after each deep layer's Dense, before its ReLU (`MLP`)
DEEP_NORMS = ("none", "batch", "layer")
# which embedding rows `embedding_l2` penalises: the batch's lookups, or the whole tables
EMBEDDING_L2_SCOPES = ("batch", "table")
# quantile buckets per numeric column: more than this many bins of one column's fit rows
# hold too few rows each to learn an embedding (and a hostile bundle must not ask for 2**31)
MAX_NUMERIC_BUCKETS = 4096

# `model.*` key -> its range rule, checked when a configuration is read (`check_field`)
RULES: Mapping[str, Rule] = {
    "model.structure": (lambda v: v in STRUCTURES, f"must be one of {', '.join(STRUCTURES)}"),
    "model.embedding_dim": (at_least(1), "must be ≥ 1"),
    "model.num_cross_layers": (at_least(1), "must be ≥ 1"),
    "model.projection_dim": (at_least(1), "must be ≥ 1, or none for full rank"),
    "model.deep_units": (lambda v: all(u >= 1 for u in v), "must hold layer widths ≥ 1"),
    "model.dropout": (half_open(0.0, 1.0), "must be in [0, 1)"),
    "model.numeric_buckets": (
        lambda v: v == 0 or 2 <= v <= MAX_NUMERIC_BUCKETS,
        f"must be 0 (none) or from 2 to {MAX_NUMERIC_BUCKETS}",
    ),
    "model.deep_norm": (lambda v: v in DEEP_NORMS, f"must be one of {', '.join(DEEP_NORMS)}"),
    "model.embedding_l2": (at_least(0.0), "must be ≥ 0"),
    "model.embedding_l2_scope": (
        lambda v: v in EMBEDDING_L2_SCOPES,
        f"must be one of {', '.join(EMBEDDING_L2_SCOPES)}",
    ),
}


def cross_options_problem(cross_type: str, projection_dim: int | None, diag_scale: float) -> str | None:
    """Why `cross_type` cannot take these options, or None when they fit.

    A vector cross has no kernel to project or shift, and a mixture has no diagonal
    term; refusing such settings beats ignoring them silently.

    Example:
        >>> cross_options_problem("mixture", 8, 0.0) is None
        True
        >>> cross_options_problem("vector", 8, 0.0).endswith("Received: projection_dim=8")
        True
    """
    if cross_type not in CROSS_TYPES:
        return f"`cross_type` must be one of {', '.join(CROSS_TYPES)}. Received: cross_type={cross_type!r}"
    if cross_type == "vector" and projection_dim is not None:
        return (
            "`projection_dim` must be None for cross_type='vector' (its weight is one vector). "
            f"Received: projection_dim={projection_dim!r}"
        )
    if cross_type != "matrix" and diag_scale:
        return (
            f"`diag_scale` must be 0 for cross_type={cross_type!r} (only 'matrix' has a diagonal term). "
            f"Received: diag_scale={diag_scale!r}"
        )
    return None


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
        cross_type: str, the kind of cross layer: `"matrix"` (`FeatureCross`,
            DCN-V2; the default and the seed's), `"vector"` (`VectorCross`,
            DCN v1; takes no `projection_dim` and no `diag_scale`) or
            `"mixture"` (`MixtureCross`, DCN-Mix; `projection_dim` is each
            expert's rank, None for full rank; no `diag_scale`).
        num_experts: int ≥ 1, experts per mixture layer; only
            `cross_type="mixture"` uses it. Defaults to 4.
        use_bias_terms: bool, a table model adds `BiasTerms`: a global offset (the
            fit labels' mean, or a binary task's base-rate logit) plus one learned
            scalar per value of every categorical feature (user and item biases, ...),
            so the network predicts the residual around them. Defaults to `False`
            (the seed's).
        clip_output: bool, a regression table model clamps its predictions to the fit
            labels' range in eval mode (training sees the raw output). Defaults to `False`.
        user_history: bool, a table model whose spec names a `user` and an `item`
            column adds an `InteractionHistory` of the user: SVD++'s implicit
            feedback, the normalised sum of learned embeddings of the items the user
            interacted with in the fit rows, the scored item left out. Defaults to `False`.
        item_history: bool, the same the other way round: the normalised sum of
            learned embeddings of the users who interacted with the item. Defaults to `False`.
        numeric_buckets: int, 0 or ≥ 2: each numeric column's block also adds a learned
            embedding of the value's bucket, one of `numeric_buckets` bins between
            quantiles of the column's fit rows (`TableInputs.fit_numeric_buckets`), so
            the network sees step functions of a value as well as its projection; a
            missing value adds none. Defaults to 0 (the seed's: the projection only).
        deep_norm: str, a normalisation after each Dense layer of the deep network,
            before its ReLU: `"none"` (default, the seed's), `"batch"`
            (`torch.nn.BatchNorm1d`, torch's defaults: momentum 0.1, eps 1e-5; running
            statistics in eval mode) or `"layer"` (`torch.nn.LayerNorm`, eps 1e-5).
        embedding_l2: float ≥ 0, `λ`, the weight of an L2 penalty on the categorical
            embeddings, added to the training loss (`DCN.regularization_loss`); the
            penalised tables are every categorical column's embedding table (or, built
            by `build_dcn`, every feature's) and the bias terms' per-value scalars when
            `use_bias_terms` builds them; multi-hot bags and histories are not
            penalised. Defaults to 0 (no penalty).
        embedding_l2_scope: str, which rows `embedding_l2` penalises: `"batch"`
            (default): `λ · mean over the batch's rows of Σ_f (||e_f[x_f]||² + b_f[x_f]²)`,
            the rows the batch looks up, so an update touches only them; `"table"`:
            `λ · Σ (every squared weight of those tables)`, the whole tables every step
            (FuxiCTR's `embedding_regularizer`).

    Raises:
        ValueError: on an unknown structure or cross type, an option the cross
            type does not take, or an inconsistent shape, naming the field and
            echoing the value.

    Example:
        >>> DCNConfig(structure="deep_only", deep_units=(192, 192, 192)).structure
        'deep_only'
        >>> DCNConfig(cross_type="mixture", projection_dim=8, num_experts=2).to_dict()["num_experts"]
        2
        >>> DCNConfig(deep_norm="layer", embedding_l2=1e-4, embedding_l2_scope="table").to_dict()["embedding_l2"]
        0.0001
    """

    structure: str = "stacked"
    embedding_dim: int = 32
    num_cross_layers: int = 1
    projection_dim: int | None = None
    diag_scale: float = 0.0
    deep_units: tuple[int, ...] = field(default=(192, 192))
    dropout: float = 0.0
    cross_type: str = "matrix"
    num_experts: int = 4
    use_bias_terms: bool = False
    clip_output: bool = False
    user_history: bool = False
    item_history: bool = False
    numeric_buckets: int = 0
    deep_norm: str = "none"
    embedding_l2: float = 0.0
    embedding_l2_scope: str = "batch"

    def __post_init__(self) -> None:
        if self.structure not in STRUCTURES:
            raise ValueError(
                f"`structure` must be one of {', '.join(STRUCTURES)}. Received: structure={self.structure!r}"
            )
        problem = cross_options_problem(self.cross_type, self.projection_dim, self.diag_scale)
        if problem:
            raise ValueError(problem)
        if isinstance(self.num_experts, bool) or not isinstance(self.num_experts, int) or self.num_experts < 1:
            raise ValueError(f"`num_experts` must be a positive int. Received: num_experts={self.num_experts!r}")
        for name in LEVER_FLAGS:
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"`{name}` must be a bool. Received: {name}={getattr(self, name)!r}")
        buckets = self.numeric_buckets
        in_range = isinstance(buckets, int) and (buckets == 0 or 2 <= buckets <= MAX_NUMERIC_BUCKETS)
        if isinstance(buckets, bool) or not in_range:
            raise ValueError(
                f"`numeric_buckets` must be 0 (none) or an int from 2 to {MAX_NUMERIC_BUCKETS}. "
                f"Received: numeric_buckets={buckets!r}"
            )
        if self.deep_norm not in DEEP_NORMS:
            raise ValueError(
                f"`deep_norm` must be one of {', '.join(DEEP_NORMS)}. Received: deep_norm={self.deep_norm!r}"
            )
        l2 = self.embedding_l2
        # false for NaN, inf and an int too large for a float, which math.isfinite would raise on
        if isinstance(l2, bool) or not isinstance(l2, int | float) or not 0 <= l2 <= sys.float_info.max:
            raise ValueError(f"`embedding_l2` must be a finite number ≥ 0. Received: embedding_l2={l2!r}")
        object.__setattr__(self, "embedding_l2", float(l2))
        if self.embedding_l2_scope not in EMBEDDING_L2_SCOPES:
            raise ValueError(
                f"`embedding_l2_scope` must be one of {', '.join(EMBEDDING_L2_SCOPES)}. "
                f"Received: embedding_l2_scope={self.embedding_l2_scope!r}"
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
            "cross_type": self.cross_type,
            "num_experts": self.num_experts,
            "use_bias_terms": self.use_bias_terms,
            "clip_output": self.clip_output,
            "user_history": self.user_history,
            "item_history": self.item_history,
            "numeric_buckets": self.numeric_buckets,
            "deep_norm": self.deep_norm,
            "embedding_l2": self.embedding_l2,
            "embedding_l2_scope": self.embedding_l2_scope,
        }
