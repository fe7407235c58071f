"""Feature × feature importance of a cross layer: block norms of its kernel."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from dcnrank.layers.feature_cross import FeatureCross
from dcnrank.layers.mixture_cross import MixtureCross
from dcnrank.layers.vector_cross import VectorCross

CrossLayer = FeatureCross | VectorCross | MixtureCross


def interaction_matrix(
    layer: CrossLayer,
    num_features: int | None = None,
    gate_inputs: torch.Tensor | None = None,
    *,
    block_sizes: Sequence[int] | None = None,
) -> np.ndarray:
    """The importance of each feature pair in one cross layer.

    Every cross layer type is read through `(d, d)` kernels `W` acting on `x`
    (`x0_j` multiplies output `j` of `W x`), each transposed to Keras' layout
    `(inputs, outputs)` and cut into `F × F` blocks: `E × E` entries each with
    `num_features` (`E = d / F`, the embedding size), or `E_i × E_j` entries with
    `block_sizes = (E_1, …, E_F)`, `Σ E_i = d` (a table's columns of different
    embedding widths; a wider block has more entries, so its norms run larger).
    With `N(W)_{ij}` the Frobenius norm of the block that carries feature `i` of
    `x` into the output of feature `j`,
    the weight of the cross `x_i × x0_j`:

    - `FeatureCross`: entry `(i, j) = N(W)_{ij}`, `W` its kernel (`U·V` when low
      rank, which the seed could not show). With `E = 1` (dense features, as in
      the toy) it is `|W|`.
    - `VectorCross` (DCN v1, `x0 · (xᵀ w)`): the same definition applied to its
      equivalent rank-one kernel `W = 1 wᵀ`, so entry `(i, j) = √E_j · ‖w_i‖`,
      `w_i` the block of `w` reading feature `i`. Equal blocks give equal columns: DCN v1
      lets feature `i` of `x` reach every output with the same weight, and only
      the row says which features it crosses with `x0`. It is comparable in
      scale with a `FeatureCross`'s matrix; with `E = 1` it is `|w_i|`.
    - `MixtureCross` (DCN-Mix): `Σ_k π_k N(U_k C_k V_kᵀ)_{ij}`, the gate-weighted
      sum of each expert's block norms (summing norms, not norming the sum,
      so experts that cancel each other still show). `U_k C_k V_kᵀ` is the
      expert's linear map with an identity activation and its Jacobian at
      `x = 0` with tanh. `π_k` is the mean gate weight of expert `k` over
      `gate_inputs` (rows of the layer's input `x`; for the first layer of a
      DCN that is `x0`), or `1 / K` when `gate_inputs` is None: the mean over
      experts.

    Args:
        layer: a trained `FeatureCross`, `VectorCross` or `MixtureCross`.
        num_features: int, number of equal-width features `F` that make up `d`.
            Give this or `block_sizes`.
        gate_inputs: `(N, d)` tensor or None, only for a `MixtureCross`: the rows
            whose average gate weights weigh the experts. Defaults to None
            (equal weights).
        block_sizes: sequence of positive ints or None, the width of each
            feature's block in layer order, summing to `d`; instead of
            `num_features`, for blocks of unequal widths.

    Returns:
        A non-negative `(F, F)` float64 array.

    Raises:
        ValueError: unless exactly one of `num_features` and `block_sizes` is
            given; when `num_features` does not divide the layer's width or
            `block_sizes` are not positive ints summing to it; when the
            layer is not a cross layer, or `gate_inputs` is given for a layer
            without gates or has the wrong shape.

    Example:
        >>> layer = FeatureCross(4)
        >>> interaction_matrix(layer, num_features=2).shape
        (2, 2)
        >>> interaction_matrix(VectorCross(6), num_features=3).shape
        (3, 3)
        >>> interaction_matrix(FeatureCross(5), block_sizes=[2, 3]).shape
        (2, 2)
    """
    if not isinstance(layer, FeatureCross | VectorCross | MixtureCross):
        raise ValueError(
            f"`layer` must be a FeatureCross, VectorCross or MixtureCross. Received: {type(layer).__name__}"
        )
    sizes = _block_sizes(layer.in_features, num_features, block_sizes)
    if gate_inputs is not None and not isinstance(layer, MixtureCross):
        raise ValueError(
            f"`gate_inputs` only weighs the experts of a MixtureCross; a {type(layer).__name__} has none. "
            "Received: a tensor; pass gate_inputs=None"
        )
    with torch.no_grad():
        if not isinstance(layer, MixtureCross):
            return _block_norms(layer.kernel().detach().cpu().double(), sizes).numpy()  # (F, F)
        weights = _expert_weights(layer, gate_inputs)  # (K,)
        per_expert = _block_norms(layer.kernels().detach().cpu().double(), sizes)  # (K, F, F)
        return torch.einsum("k,kij->ij", weights, per_expert).numpy()  # (F, F)


def _block_sizes(d: int, num_features: int | None, block_sizes: Sequence[int] | None) -> list[int]:
    """The width of each of the `F` blocks, from exactly one of `num_features` and `block_sizes`."""
    if (num_features is None) == (block_sizes is None):
        raise ValueError(
            "Give exactly one of `num_features` and `block_sizes`. "
            f"Received: num_features={num_features!r}, block_sizes={block_sizes!r}"
        )
    if block_sizes is None:
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1 or d % num_features:
            raise ValueError(
                f"`num_features` must be a positive int dividing in_features={d}. "
                f"Received: num_features={num_features!r}"
            )
        return [d // num_features] * num_features
    sizes = list(block_sizes) if isinstance(block_sizes, Sequence) and not isinstance(block_sizes, str) else None
    if not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes) or sum(sizes) != d:
        raise ValueError(
            f"`block_sizes` must be a non-empty sequence of positive ints summing to in_features={d}. "
            f"Received: block_sizes={block_sizes!r}"
        )
    return sizes


def _block_norms(kernels: torch.Tensor, block_sizes: Sequence[int]) -> torch.Tensor:
    """`(..., d, d)` kernels in torch's `W x` layout -> `(..., F, F)` block Frobenius norms,
    indexed (input feature i, output feature j)."""
    keras = kernels.transpose(-1, -2)  # (..., d_in, d_out), Keras' layout
    owner = torch.repeat_interleave(torch.arange(len(block_sizes)), torch.tensor(block_sizes))  # (d,)
    # Each entry goes to its block: S = A (W∘W) Aᵀ with A the (F, d) one-hot of `owner`.
    one_hot = torch.nn.functional.one_hot(owner, len(block_sizes)).to(keras.dtype)  # (d, F)
    return (one_hot.T @ keras.square() @ one_hot).sqrt()  # (..., F, F)


def _expert_weights(layer: MixtureCross, gate_inputs: torch.Tensor | None) -> torch.Tensor:
    """Mean gate weight per expert over `gate_inputs`, or uniform: a `(K,)` float64 tensor."""
    k = layer.num_experts
    if gate_inputs is None:
        return torch.full((k,), 1.0 / k, dtype=torch.float64)
    if gate_inputs.dim() != 2 or gate_inputs.shape[1] != layer.in_features or len(gate_inputs) == 0:
        raise ValueError(
            f"`gate_inputs` must have shape (N ≥ 1, {layer.in_features}). "
            f"Received: gate_inputs.shape={tuple(gate_inputs.shape)}"
        )
    return layer.gates(gate_inputs.to(layer.gate_weight)).double().mean(dim=0).cpu()  # (K,)
