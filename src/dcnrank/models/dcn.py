"""`DCN`: input layer → cross and/or deep network → a one-unit linear head."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from dcnrank.config.model_config import EMBEDDING_L2_SCOPES, LEVER_FLAGS, DCNConfig
from dcnrank.data.encoding.interactions import Interactions
from dcnrank.layers.dense import Dense
from dcnrank.layers.feature_cross import FeatureCross
from dcnrank.layers.mixture_cross import MixtureCross
from dcnrank.layers.mlp import MLP
from dcnrank.layers.vector_cross import VectorCross
from dcnrank.models.bias_terms import OutputLevers
from dcnrank.models.cross_network import CrossNetwork
from dcnrank.models.feature_embedding import FeatureEmbedding
from dcnrank.models.size import TRAINING_ON_CPU, MemoryCheck, builds_on_meta, check_model_fits, dcn_size

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

    With `embedding_l2 = λ > 0` the model is `Regularized`: :meth:`regularization_loss`
    is the L2 penalty a trainer adds to the batch loss, over the categorical embedding
    tables of `inputs` (an input module with `categorical_embeddings()` and
    `categorical_width`, the leading columns of x0 that are their rows:
    `FeatureEmbedding`, `TableInputs`) and the bias terms of `output`:

    - scope `"batch"`: `λ · mean_rows Σ_f (||e_f[x_f]||² + b_f[x_f]²)` over the rows the
      last training forward pass looked up (x0's categorical columns, the biases);
    - scope `"table"`: `λ · (Σ ||E||² + Σ b²)` over the whole tables (with sparse embedding
      updates, over the distinct rows the batch looked up: `FeatureEmbedding.square_sum`).

    Args:
        inputs: module mapping a batch to `(B, in_features)`.
        in_features: int, width `d` of `inputs`' output.
        cross: the cross network, or None.
        deep: the deep network (`MLP`), or None.
        structure: one of `"stacked"`, `"parallel"`, `"cross_only"`, `"deep_only"`.
        output: a module `(batch, (B,)) -> (B,)` applied to the head's output
            (`OutputLevers`), or None. Defaults to None.
        embedding_l2: float ≥ 0, `λ`. Defaults to 0 (no penalty).
        embedding_l2_scope: `"batch"` (default) or `"table"`.

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
        output: OutputLevers | None = None,
        embedding_l2: float = 0.0,
        embedding_l2_scope: str = "batch",
    ) -> None:
        super().__init__()
        l2 = embedding_l2
        if isinstance(l2, bool) or not isinstance(l2, int | float) or not 0 <= l2 <= sys.float_info.max:
            raise ValueError(f"`embedding_l2` must be a finite number ≥ 0. Received: embedding_l2={l2!r}")
        if embedding_l2_scope not in EMBEDDING_L2_SCOPES:
            raise ValueError(
                f"`embedding_l2_scope` must be one of {', '.join(EMBEDDING_L2_SCOPES)}. "
                f"Received: embedding_l2_scope={embedding_l2_scope!r}"
            )
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
        self.output = output
        self.embedding_l2 = float(embedding_l2)
        self.embedding_l2_scope = embedding_l2_scope
        self._batch_penalty: torch.Tensor | None = None  # the last training batch's, until taken

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        x0 = self.inputs(batch)  # (B, d)
        if self.training and self.embedding_l2 and self.embedding_l2_scope == "batch":
            self._batch_penalty = self._lookup_penalty(batch, x0)
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
        return out

    def regularization_loss(self) -> torch.Tensor:
        """The L2 penalty on the embeddings to add to the training loss (a scalar; 0 without one).

        Scope `"batch"`: the penalty of the rows of the last training forward pass, handed
        over once (a second call, or one before any training pass, gives 0), so the model
        holds no graph after its step. Scope `"table"`: the whole tables' penalty, now.

        Example:
            >>> model = build_dcn(DCNConfig(embedding_dim=2, deep_units=(2,), embedding_l2=0.5), [3])
            >>> _ = torch.nn.init.ones_(model.inputs.weight)
            >>> _ = model.train()(torch.tensor([[0], [2]]))  # two rows, each ||e||² = 2
            >>> model.regularization_loss().item(), model.regularization_loss().item()
            (1.0, 0.0)
        """
        zero = torch.zeros((), device=self.head.weight.device)
        if not self.embedding_l2:
            return zero
        if self.embedding_l2_scope == "batch":
            penalty, self._batch_penalty = self._batch_penalty, None
            return zero if penalty is None else penalty
        embeddings = getattr(self.inputs, "categorical_embeddings", None)
        squares = [e.square_sum() for e in embeddings()] if embeddings is not None else []
        bias_terms = None if self.output is None else self.output.bias_terms
        if bias_terms is not None:
            squares.append(bias_terms.bias.square().sum())
        return self.embedding_l2 * torch.stack(squares).sum() if squares else zero

    def _lookup_penalty(self, batch: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """`λ · mean over rows of Σ_f (||e_f[x_f]||² + b_f[x_f]²)` of this batch's lookups."""
        width = getattr(self.inputs, "categorical_width", 0)
        per_row = x0[:, :width].float().square().sum(dim=-1)  # (B,)
        bias_terms = None if self.output is None else self.output.bias_terms
        if bias_terms is not None:
            per_row = per_row + bias_terms.lookup(batch.categorical).square().sum(dim=-1)  # type: ignore[attr-defined]
        if len(per_row) == 0:  # an empty share of a batch: nothing looked up
            return torch.zeros((), device=x0.device)
        return self.embedding_l2 * per_row.mean()

    @torch.no_grad()
    def set_histories(self, interactions: Interactions) -> None:
        """Fill a table model's user and item histories (when present) from the fit rows' user → item pairs.

        Give the pairs of the rows the model trains on, never validation or test rows:
        the histories then hold which items each user interacted with there, and no
        label. The user history takes `interactions`, the item history its transpose
        (`TableInputs.set_histories`). Without histories this does nothing.

        Args:
            interactions: the user → item `Interactions`, sized by the spec's `user`
                and `item` tables.

        Raises:
            ValueError: if the interactions' sizes are not the histories'.

        Example:
            >>> model = build_dcn(DCNConfig(embedding_dim=2, deep_units=(2,)), [4, 3])
            >>> model.set_histories(Interactions.from_pairs(torch.tensor([0]), torch.tensor([1]), 3, 4))  # none here
        """
        set_inputs = getattr(self.inputs, "set_histories", None)
        if set_inputs is not None:  # a table model's histories are input blocks
            set_inputs(interactions)

    @torch.no_grad()
    def fit_numeric_buckets(self, numeric: torch.Tensor, missing: torch.Tensor) -> None:
        """Set a table model's numeric bucket edges from its fit rows' values
        (`TableInputs.fit_numeric_buckets`); without buckets this does nothing.

        Args:
            numeric: `(N, Fn)` standardised numeric values of the fit rows.
            missing: `(N, Fn)` bool, which are missing.
        """
        fit_inputs = getattr(self.inputs, "fit_numeric_buckets", None)
        if fit_inputs is not None:
            fit_inputs(numeric, missing)

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
    memory_check: MemoryCheck | None = TRAINING_ON_CPU,
) -> DCN:
    """Build a DCN's network on vocabulary embeddings or dense features, without levers.

    `inputs` is a `FeatureEmbedding` of `vocabulary_sizes` (the model then takes
    `(B, F)` integer indices) or `nn.Identity` over `dense_features` floats; then the
    cross and deep networks of `config` and the head. The levers (bias terms, clipping,
    histories) are a table model's: `build_table_dcn` builds them from a spec's roles.

    Before anything is allocated, the model's size is counted from `config` and the
    input sizes (`dcn_size`) and checked against the memory available
    (`check_model_fits`); a build on the meta device (`with torch.device("meta")`)
    allocates nothing and is never refused.

    Args:
        config: the architecture, with every lever of `LEVER_FLAGS` off.
        vocabulary_sizes: per categorical feature, its table size including the
            OOV row.
        dense_features: instead of vocabularies, the number of float inputs (the toy,
            a table model's network).
        memory_check: how to check the size against memory (`MemoryCheck`: the
            device, training or weights only), or None for no check. Defaults to
            training on the CPU.

    Returns:
        A freshly initialised `DCN` (Keras' initialisers).

    Raises:
        ValueError: unless exactly one of `vocabulary_sizes`, `dense_features` is
            given, if `dense_features` is not a positive int, if a lever of `config`
            is on (naming it), or, naming the settings responsible, if the model does
            not fit in memory.

    Example:
        >>> build_dcn(DCNConfig(structure="cross_only"), dense_features=3).in_features
        3
        >>> try:
        ...     build_dcn(DCNConfig(use_bias_terms=True), vocabulary_sizes=[5, 3])
        ... except ValueError as error:
        ...     print(str(error)[:59])
        `build_dcn` builds no levers; `build_table_dcn` builds them
    """
    if (vocabulary_sizes is None) == (dense_features is None):
        raise ValueError(
            "Give exactly one of `vocabulary_sizes` and `dense_features`. "
            f"Received: vocabulary_sizes={vocabulary_sizes!r}, dense_features={dense_features!r}"
        )
    if dense_features is not None and (
        isinstance(dense_features, bool) or not isinstance(dense_features, int) or dense_features < 1
    ):
        raise ValueError(f"`dense_features` must be a positive int. Received: dense_features={dense_features!r}")
    levers = [f"{flag}=True" for flag in LEVER_FLAGS if getattr(config, flag)]
    if levers:
        raise ValueError(
            "`build_dcn` builds no levers; `build_table_dcn` builds them from a feature spec's roles. "
            f"Received: {', '.join(levers)}"
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
    deep = MLP(width, config.deep_units, config.dropout, norm=config.deep_norm) if config.uses_deep else None
    return DCN(
        inputs,
        width,
        cross,
        deep,
        config.structure,
        embedding_l2=config.embedding_l2,
        embedding_l2_scope=config.embedding_l2_scope,
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
