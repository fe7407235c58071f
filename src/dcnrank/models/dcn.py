"""`DCN`: input layer → cross and/or deep network → a one-unit linear head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from dcnrank.data.interactions import Interactions
from dcnrank.layers.dense import Dense
from dcnrank.layers.feature_cross import FeatureCross
from dcnrank.layers.mixture_cross import MixtureCross
from dcnrank.layers.mlp import MLP
from dcnrank.layers.vector_cross import VectorCross
from dcnrank.models.bias_terms import BiasTerms, OutputLevers
from dcnrank.models.config import DCNConfig
from dcnrank.models.cross_network import CrossNetwork
from dcnrank.models.feature_embedding import FeatureEmbedding
from dcnrank.models.interaction_history import DenseSavedHistory, InteractionHistory
from dcnrank.models.item_features import ItemFeatures
from dcnrank.models.size import TRAINING_ON_CPU, MemoryCheck, builds_on_meta, check_model_fits, dcn_size

# The range `clip_output` clamps predictions to: MovieLens' 1..5 stars.
RATING_RANGE = (1.0, 5.0)


CrossLayer = FeatureCross | VectorCross | MixtureCross


class DCN(nn.Module):
    """A Deep & Cross Network that scores one row with one number.

    `inputs` maps a batch to `x0` of width `d` (a `FeatureEmbedding` for
    categorical data, `nn.Identity` for dense features such as the toy's), then

    - stacked:    `head(deep(cross(x0)))`
    - parallel:   `head([cross(x0), deep(x0)])`
    - cross_only: `head(cross(x0))`
    - deep_only:  `head(deep(x0))`

    The cross and deep networks are passed in, so any cross network with an
    `out_features` attribute (matrix, vector or mixture crosses, a custom one) fits.

    `output` (a table model's `OutputLevers`, or None) wraps the head's output:
    `output(batch, head(...))`, i.e. the offset and bias terms around the network and
    the eval-mode clamp to the label range; a table model's histories are blocks of
    its `inputs` (`TableInputs`). :meth:`set_histories` and
    :meth:`set_label_statistics` fill both after building.

    Optional levers of the MovieLens path (all off by default):

    - `item_features`: `x0 = [inputs(batch), item_features(batch[:, 0])]`, the side
      features of the item in input column 0;
    - `user_history`: `user_history(batch[:, 1], batch[:, 0])` is appended to x0: the
      pooled embeddings of the items the user in column 1 rated (SVD++'s implicit
      feedback), the scored item left out;
    - `item_history`: `item_history(batch[:, 0], batch[:, 1])` is appended to x0: the
      same for the users who rated the item;
    - `bias_terms`: `output = bias_terms(batch) + head(...)`, i.e. `μ + Σ b + network`;
    - `clip_output`: in eval mode the output is clamped to `RATING_RANGE`.

    Args:
        inputs: module mapping a batch to `(B, in_features)`.
        in_features: int, width `d` of `inputs`' output.
        cross: the cross network, or None.
        deep: the deep network (`MLP`), or None.
        structure: one of `"stacked"`, `"parallel"`, `"cross_only"`, `"deep_only"`.
        bias_terms: a `BiasTerms` added to the output, or None.
        item_features: an `ItemFeatures` appended to x0, or None; `in_features`
            then counts its width too.
        user_history: an `InteractionHistory` (owners: users, members: items)
            appended to x0, or None; `in_features` counts its width too.
        item_history: an `InteractionHistory` (owners: items, members: users)
            appended to x0, or None; `in_features` counts its width too.
        clip_output: bool, clamp eval-mode outputs to `RATING_RANGE`. Defaults to `False`.
        output: a module `(batch, (B,)) -> (B,)` applied to the head's output
            (`OutputLevers`), or None. Defaults to None.

    Shape:
        input: whatever `inputs` takes with batch `B`; output `(B,)`.

    Example:
        >>> model = build_dcn(DCNConfig(embedding_dim=4, deep_units=(8,)), vocabulary_sizes=[5, 3])
        >>> model(torch.tensor([[1, 2], [0, 0]])).shape
        torch.Size([2])
    """

    def __init__(
        self,
        inputs: nn.Module,
        in_features: int,
        cross: nn.Module | None,
        deep: MLP | None,
        structure: str,
        bias_terms: BiasTerms | None = None,
        item_features: ItemFeatures | None = None,
        clip_output: bool = False,
        user_history: InteractionHistory | None = None,
        item_history: InteractionHistory | None = None,
        output: OutputLevers | None = None,
    ) -> None:
        super().__init__()
        wants_cross = structure in ("stacked", "parallel", "cross_only")
        wants_deep = structure in ("stacked", "parallel", "deep_only")
        if (cross is not None) != wants_cross or (deep is not None) != wants_deep:
            raise ValueError(
                f"structure={structure!r} needs cross={'a module' if wants_cross else 'None'} and "
                f"deep={'a module' if wants_deep else 'None'}. "
                f"Received: cross={type(cross).__name__}, deep={type(deep).__name__}"
            )
        self.inputs = inputs
        self.cross = cross
        self.deep = deep
        self.structure = structure
        if structure == "stacked":
            head_in = deep.out_features  # type: ignore[union-attr]
        elif structure == "parallel":
            head_in = cross.out_features + deep.out_features  # type: ignore[union-attr, operator]
        elif structure == "cross_only":
            head_in = cross.out_features  # type: ignore[union-attr]
        else:
            head_in = deep.out_features  # type: ignore[union-attr]
        self.in_features = in_features
        self.head = Dense(head_in, 1)
        self.bias_terms = bias_terms
        self.item_features = item_features
        self.user_history = user_history
        self.item_history = item_history
        self.clip_output = clip_output
        self.output = output

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        x0 = self.inputs(batch)  # (B, d)
        if self.item_features is not None:
            x0 = torch.cat([x0, self.item_features(batch[:, 0])], dim=-1)  # (B, d + 2E)
        if self.user_history is not None:
            x0 = torch.cat([x0, self.user_history(batch[:, 1], batch[:, 0])], dim=-1)  # (B, d + E)
        if self.item_history is not None:
            x0 = torch.cat([x0, self.item_history(batch[:, 0], batch[:, 1])], dim=-1)  # (B, d + E)
        if self.structure == "stacked":
            h = self.deep(self.cross(x0))  # type: ignore[misc]  # (B, units[-1])
        elif self.structure == "parallel":
            h = torch.cat([self.cross(x0), self.deep(x0)], dim=-1)  # type: ignore[misc]  # (B, d + units[-1])
        elif self.structure == "cross_only":
            h = self.cross(x0)  # type: ignore[misc]  # (B, d)
        else:
            h = self.deep(x0)  # type: ignore[misc]  # (B, units[-1])
        out = self.head(h).squeeze(-1)  # (B,)
        if self.output is not None:
            out = self.output(batch, out)  # (B,) offset + Σ b + network, clamped in eval mode
        if self.bias_terms is not None:
            out = out + self.bias_terms(batch)  # (B,)
        if self.clip_output and not self.training:
            out = out.clamp(*RATING_RANGE)  # (B,)
        return out

    @torch.no_grad()
    def set_histories(self, interactions: Interactions | torch.Tensor) -> None:
        """Fill the user and item histories (when present) from the fit rows' user → item pairs.

        Give the pairs of the rows the model trains on, never validation or test rows:
        the histories then hold which items each user interacted with there, and no
        label. The user history takes `interactions`, the item history its transpose.
        Without histories this does nothing.

        Args:
            interactions: the user → item `Interactions` (a table model's, sized by the
                spec's `user` and `item` tables); or, for a MovieLens model, its
                encoded rows `(N, F ≥ 2)` (column 0 item, column 1 user).

        Raises:
            ValueError: if the rows are not `(N, F ≥ 2)`, or the interactions' sizes
                are not the histories'.

        Example:
            >>> model = build_dcn(DCNConfig(embedding_dim=2, deep_units=(2,), user_history=True), [4, 3])
            >>> model.set_histories(torch.tensor([[1, 2], [3, 2]]))  # (item, user) rows
            >>> model.user_history.members.tolist()
            [1, 3]
        """
        if isinstance(interactions, torch.Tensor):
            grouped = self._movielens_interactions(interactions)
            if grouped is None:
                return
            interactions = grouped
        set_inputs = getattr(self.inputs, "set_histories", None)
        if set_inputs is not None:  # a table model's histories are input blocks
            set_inputs(interactions)
        if self.user_history is not None:
            self.user_history.set_history(interactions)
        if self.item_history is not None:
            self.item_history.set_history(interactions.transpose())

    def _movielens_interactions(self, rows: torch.Tensor) -> Interactions | None:
        """The user → item pairs of MovieLens encoded rows (column 0 item, column 1 user)."""
        if rows.dim() != 2 or rows.shape[1] < 2:
            raise ValueError(f"`rows` must be encoded rows of shape (N, F ≥ 2). Received: shape={tuple(rows.shape)}")
        if self.user_history is not None:
            users, items = self.user_history.num_owners, self.user_history.num_members
        elif self.item_history is not None:
            users, items = self.item_history.num_members, self.item_history.num_owners
        else:
            return None
        return Interactions.from_pairs(rows[:, 1], rows[:, 0], users, items)

    @torch.no_grad()
    def set_label_statistics(self, offset: float, low: float, high: float) -> None:
        """Set a table model's output levers from its fit rows' labels (no-op without them).

        Args:
            offset: float, the bias terms' global offset (`label_offset`: the label
                mean, or a binary task's base-rate logit).
            low: float, the smallest fit label (the eval-mode clamp's lower end).
            high: float, the largest fit label.

        Raises:
            ValueError: as `OutputLevers.set_label_statistics`.
        """
        if self.output is not None:
            self.output.set_label_statistics(offset, low, high)

    def first_cross_layer(self):  # noqa: ANN201 - a cross layer, imported lazily by explain/
        """The first cross layer (`FeatureCross`, `VectorCross` or `MixtureCross`), for explanations."""
        if self.cross is None:
            raise ValueError("this model has no cross network (structure='deep_only')")
        return self.cross.layers[0]


def build_dcn(
    config: DCNConfig,
    vocabulary_sizes: Sequence[int] | None = None,
    dense_features: int | None = None,
    label_mean: float = 0.0,
    memory_check: MemoryCheck | None = TRAINING_ON_CPU,
) -> DCN:
    """Build a DCN from its config and its inputs.

    Before anything is allocated, the model's size is counted from `config` and the
    input sizes (`dcn_size`) and checked against the memory available
    (`check_model_fits`); a build on the meta device (`with torch.device("meta")`)
    allocates nothing and is never refused.

    Args:
        config: the architecture.
        vocabulary_sizes: per categorical feature, its table size including the
            OOV row; the model then takes `(B, F)` integer indices.
        dense_features: instead of vocabularies, the number of float inputs;
            the model then takes `(B, dense_features)` floats (the toy).
        label_mean: float, the global mean `μ` of `config.use_bias_terms`
            (the training labels' mean). Defaults to 0.
        memory_check: how to check the size against memory (`MemoryCheck`: the
            device, training or weights only), or None for no check. Defaults to
            training on the CPU.

    Returns:
        A freshly initialised `DCN` (Keras' initialisers). With
        `config.item_features`, its item tables are zero until
        `model.item_features.set_items(...)` fills them; with `config.user_history`
        or `config.item_history`, the histories are empty until
        `model.user_history.set_history(...)` (and `item_history`) fill them.

    Raises:
        ValueError: unless exactly one of `vocabulary_sizes`, `dense_features` is
            given, if a lever of `config` (bias terms, item features, histories) is
            set with `dense_features` (they need categorical inputs), or if a history
            is asked for with fewer than two features (item and user columns);
            also, naming the settings responsible, if the model does not fit in memory.
    """
    if (vocabulary_sizes is None) == (dense_features is None):
        raise ValueError(
            "Give exactly one of `vocabulary_sizes` and `dense_features`. "
            f"Received: vocabulary_sizes={vocabulary_sizes!r}, dense_features={dense_features!r}"
        )
    if dense_features is not None:
        if isinstance(dense_features, bool) or not isinstance(dense_features, int) or dense_features < 1:
            raise ValueError(f"`dense_features` must be a positive int. Received: dense_features={dense_features!r}")
        if config.use_bias_terms or config.item_features or config.user_history or config.item_history:
            raise ValueError(
                "`config.use_bias_terms`, `config.item_features`, `config.user_history` and "
                "`config.item_history` need `vocabulary_sizes` (categorical inputs). "
                f"Received: dense_features={dense_features!r}, use_bias_terms={config.use_bias_terms}, "
                f"item_features={config.item_features}, user_history={config.user_history}, "
                f"item_history={config.item_history}"
            )
    if memory_check is not None and not builds_on_meta():
        check_model_fits(dcn_size(config, vocabulary_sizes, dense_features), memory_check)
    inputs: nn.Module
    if vocabulary_sizes is not None:
        inputs = FeatureEmbedding(vocabulary_sizes, config.embedding_dim)
        width = inputs.out_features
    else:
        inputs = nn.Identity()
        width = cast(int, dense_features)
    item_features = None
    if config.item_features and vocabulary_sizes is not None:
        item_features = ItemFeatures(int(list(vocabulary_sizes)[0]), config.embedding_dim)
        width += item_features.out_features
    user_history = item_history = None
    if (config.user_history or config.item_history) and vocabulary_sizes is not None:
        sizes = [int(size) for size in vocabulary_sizes]
        if len(sizes) < 2:
            raise ValueError(
                "`config.user_history` and `config.item_history` need an item (column 0) and a user "
                f"(column 1) feature. Received: vocabulary_sizes={sizes!r}"
            )
        if config.user_history:
            user_history = DenseSavedHistory(sizes[1], sizes[0], config.embedding_dim)
            width += user_history.out_features
        if config.item_history:
            item_history = DenseSavedHistory(sizes[0], sizes[1], config.embedding_dim)
            width += item_history.out_features
    bias_terms = BiasTerms(vocabulary_sizes, label_mean) if config.use_bias_terms and vocabulary_sizes else None
    cross = (
        CrossNetwork(
            width,
            config.num_cross_layers,
            config.projection_dim,
            config.diag_scale,
            cross_type=config.cross_type,
            num_experts=config.num_experts,
        )
        if config.uses_cross
        else None
    )
    deep = MLP(width, config.deep_units, config.dropout) if config.uses_deep else None
    return DCN(
        inputs,
        width,
        cross,
        deep,
        config.structure,
        bias_terms,
        item_features,
        config.clip_output,
        user_history,
        item_history,
    )


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars, as Keras' `count_params()` reports them."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def first_cross_layer(model: nn.Module) -> CrossLayer:
    """The first cross layer of a trained `DCN` (for explanations).

    Raises:
        ValueError: when `model` is not a DCN or has no cross network.
    """
    if not isinstance(model, DCN):
        raise ValueError(f"`model` must be a DCN. Received: {type(model).__name__}")
    return cast(CrossLayer, model.first_cross_layer())
