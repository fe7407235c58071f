"""A trained DCN's cross layer as a labelled feature × feature matrix: the blocks of x0
named after the model's inputs, the layer's block norms, its strongest pairs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dcnrank.explain.heatmap import plot_heatmap
from dcnrank.explain.interactions import interaction_matrix
from dcnrank.explain.top_pairs import top_pairs
from dcnrank.models.table_inputs import TableInputs

__all__ = ["INTERACTIONS_FILE", "ModelInteractions", "input_blocks", "model_interactions"]

# The first cross layer's heatmap in a bundle folder: `dcnrank train --data` writes it there,
# and `dcnrank explain` writes there by default.
INTERACTIONS_FILE = "interactions.png"


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


def input_blocks(model: nn.Module) -> tuple[tuple[str, int], ...]:
    """The `(name, width)` blocks that make up a DCN's x0, in order: its `TableInputs`'
    :attr:`~dcnrank.models.table_inputs.TableInputs.blocks` (a block per column, then the
    user and item histories when it has them).

    Args:
        model: a `DCN` built by `build_table_dcn`.

    Returns:
        A tuple of `(name, width)` whose widths sum to `model.in_features`.

    Raises:
        ValueError: when the model does not read its inputs with `TableInputs`.

    Example:
        >>> from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec, NumericColumn
        >>> from dcnrank.models import DCNConfig
        >>> from dcnrank.models.table_inputs import build_table_dcn
        >>> spec = FeatureSpec((CategoricalColumn("c"), NumericColumn("x")), label="y", task="binary")
        >>> input_blocks(build_table_dcn(DCNConfig(structure="cross_only", embedding_dim=2), spec, {"c": 3}))
        (('c', 2), ('x', 2))
    """
    inputs = getattr(model, "inputs", None)
    if not isinstance(inputs, TableInputs):
        raise ValueError(
            "`model` must read its inputs with TableInputs to name x0's blocks. "
            f"Received: inputs={type(inputs).__name__}"
        )
    return tuple(inputs.blocks)


def model_interactions(
    model: nn.Module,
    layer: int = 0,
    gate_inputs: torch.Tensor | None = None,
) -> ModelInteractions:
    """The interaction matrix of cross layer `layer` of a DCN, labelled by its input blocks.

    Args:
        model: a `DCN` with a cross network (any structure but `deep_only`, any cross type).
        layer: int, the cross layer, 0 the first. Defaults to 0.
        gate_inputs: rows of that layer's input, only for a `MixtureCross` (see
            :func:`interaction_matrix`); None weighs its experts equally.

    Returns:
        The labelled matrix.

    Raises:
        ValueError: when the model has no cross network, `layer` is not one of its
            layers, or as :func:`input_blocks` and :func:`interaction_matrix`.

    Example:
        >>> from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec
        >>> from dcnrank.models import DCNConfig
        >>> from dcnrank.models.table_inputs import build_table_dcn
        >>> spec = FeatureSpec((CategoricalColumn("user"), CategoricalColumn("item")), label="y", task="binary")
        >>> config = DCNConfig(structure="cross_only", embedding_dim=2)
        >>> found = model_interactions(build_table_dcn(config, spec, {"user": 3, "item": 4}))
        >>> found.labels, found.block_sizes, found.matrix.shape
        (('user', 'item'), (2, 2), (2, 2))
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
    blocks = input_blocks(model)
    sizes = tuple(width for _, width in blocks)
    chosen = layers[layer]
    matrix = interaction_matrix(chosen, gate_inputs=gate_inputs, block_sizes=sizes)
    return ModelInteractions(tuple(name for name, _ in blocks), sizes, matrix, layer, type(chosen).__name__)
