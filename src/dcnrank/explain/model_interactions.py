"""A trained DCN's cross layer as a labelled feature × feature matrix: the blocks of x0
named after the model's inputs, the layer's block norms, its strongest pairs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dcnrank.explain.heatmap import plot_heatmap
from dcnrank.explain.interactions import interaction_matrix
from dcnrank.explain.top_pairs import top_pairs
from dcnrank.models.feature_embedding import FeatureEmbedding
from dcnrank.models.table_inputs import TableInputs

__all__ = ["INTERACTIONS_FILE", "ModelInteractions", "input_blocks", "model_interactions"]

# The first cross layer's heatmap in a bundle folder: `dcnrank train --data` writes it there,
# and `dcnrank explain` writes there by default.
INTERACTIONS_FILE = "interactions.png"

# The names of the two blocks `ItemFeatures` appends to x0, in its order.
ITEM_FEATURE_BLOCKS = ("item genres", "item release year")
# The names of the blocks the `InteractionHistory` modules append to x0 after them.
HISTORY_BLOCKS = (("user_history", "user's rated items"), ("item_history", "item's raters"))


@dataclass(frozen=True)
class ModelInteractions:
    """One cross layer's interaction matrix with the names and widths of its blocks.

    Args:
        labels: the `F` feature names, in x0's order.
        block_sizes: each feature's width in x0.
        matrix: the non-negative `(F, F)` matrix of :func:`interaction_matrix`.
        layer: which cross layer (0 = the first).
        layer_type: the layer's class name (`FeatureCross`, `VectorCross`, `MixtureCross`).
    """

    labels: tuple[str, ...]
    block_sizes: tuple[int, ...]
    matrix: np.ndarray
    layer: int
    layer_type: str

    def top_pairs(self, k: int = 5) -> list[tuple[str, str, float]]:
        """The `k` strongest pairs of distinct features (see :func:`top_pairs`)."""
        return top_pairs(self.matrix, self.labels, k)

    def plot(self, path: str | Path, title: str | None = None) -> Path:
        """Write the labelled heatmap PNG (cells annotated up to 20 features)."""
        title = title or f"cross layer {self.layer} ({self.layer_type}): block norms"
        return plot_heatmap(self.matrix, self.labels, path, title=title, annotate=len(self.labels) <= 20)


def input_blocks(model: nn.Module, feature_names: Sequence[str] | None = None) -> tuple[tuple[str, int], ...]:
    """The `(name, width)` blocks that make up a DCN's x0, in order.

    - `TableInputs` (a table model): its :attr:`TableInputs.blocks`, widths per column;
    - `FeatureEmbedding` (a MovieLens model): one `embedding_dim` block per name of
      `feature_names`;
    - then, when the model has `item_features`, its genres and release-year blocks;
    - then, when it has them, the `user_history` and `item_history` blocks.

    Args:
        model: a `DCN`.
        feature_names: the categorical feature names of a `FeatureEmbedding` model, in
            column order (`Bundle.feature_names`); ignored for a table model.

    Returns:
        A tuple of `(name, width)` whose widths sum to `model.in_features`.

    Raises:
        ValueError: when the inputs are of another kind, or `feature_names` is
            missing or does not match a `FeatureEmbedding`.
    """
    inputs = getattr(model, "inputs", None)
    if isinstance(inputs, TableInputs):
        blocks = list(inputs.blocks)
    elif isinstance(inputs, FeatureEmbedding):
        names = list(feature_names or [])
        if len(names) != inputs.num_features:
            raise ValueError(
                f"`feature_names` must name the model's {inputs.num_features} embedded features. "
                f"Received: feature_names={feature_names!r}"
            )
        blocks = [(name, inputs.embedding_dim) for name in names]
    else:
        raise ValueError(
            "`model` must read its inputs with TableInputs or FeatureEmbedding to name x0's blocks. "
            f"Received: inputs={type(inputs).__name__}"
        )
    item_features = getattr(model, "item_features", None)
    if item_features is not None:
        blocks += [(name, item_features.embedding_dim) for name in ITEM_FEATURE_BLOCKS]
    for attribute, name in HISTORY_BLOCKS:
        history = getattr(model, attribute, None)
        if history is not None:
            blocks.append((name, history.out_features))
    return tuple(blocks)


def model_interactions(
    model: nn.Module,
    feature_names: Sequence[str] | None = None,
    layer: int = 0,
    gate_inputs: torch.Tensor | None = None,
) -> ModelInteractions:
    """The interaction matrix of cross layer `layer` of a DCN, labelled by its input blocks.

    Args:
        model: a `DCN` with a cross network (any structure but `deep_only`, any cross type).
        feature_names: as :func:`input_blocks` (needed for a `FeatureEmbedding` model).
        layer: int, the cross layer, 0 the first. Defaults to 0.
        gate_inputs: rows of that layer's input, only for a `MixtureCross` (see
            :func:`interaction_matrix`); None weighs its experts equally.

    Returns:
        The labelled matrix.

    Raises:
        ValueError: when the model has no cross network, `layer` is not one of its
            layers, or as :func:`input_blocks` and :func:`interaction_matrix`.

    Example:
        >>> from dcnrank.models import DCNConfig, build_dcn
        >>> model = build_dcn(DCNConfig(structure="cross_only", embedding_dim=2), vocabulary_sizes=[3, 4])
        >>> found = model_interactions(model, ["user", "movie"])
        >>> found.labels, found.block_sizes, found.matrix.shape
        (('user', 'movie'), (2, 2), (2, 2))
    """
    cross = getattr(model, "cross", None)
    if cross is None:
        structure = getattr(model, "structure", "?")
        raise ValueError(
            f"`model` has no cross network to explain (structure={structure!r}); "
            "train a stacked, parallel or cross_only model"
        )
    layers = cross.layers
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < len(layers):
        raise ValueError(
            f"`layer` must be an int from 0 to {len(layers) - 1}, one of the model's "
            f"{len(layers)} cross layers. Received: layer={layer!r}"
        )
    blocks = input_blocks(model, feature_names)
    sizes = tuple(width for _, width in blocks)
    chosen = layers[layer]
    matrix = interaction_matrix(chosen, gate_inputs=gate_inputs, block_sizes=sizes)
    return ModelInteractions(tuple(name for name, _ in blocks), sizes, matrix, layer, type(chosen).__name__)
