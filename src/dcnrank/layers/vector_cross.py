"""`VectorCross`: the cross layer of the original Deep & Cross Network (DCN v1)."""

from __future__ import annotations

import torch
from torch import nn

from dcnrank.layers.dense import Dense


class VectorCross(nn.Module):
    """One cross layer of DCN v1 (Wang et al. 2017): a weight vector, not a matrix.

        y = x0 · (xᵀ w) + b + x

    `xᵀ w` is one scalar per row, so the layer costs `2d` parameters and every
    output feature `j` gets `x0_j` times the same weighted sum of `x`. It equals a
    `FeatureCross` whose kernel is the rank-one `W = 1 wᵀ` (every row `wᵀ`),
    with the bias moved outside the product with `x0` (see :meth:`kernel`).

    `w` is initialised glorot-uniform as a `d → 1` Keras `Dense` kernel,
    `U(-a, a)` with `a = sqrt(6 / (d + 1))`, and `b` at zero.

    Args:
        in_features: int, the size `d` of the last axis of `x0` and `x`.
        use_bias: bool, whether to add the bias `b ∈ R^d`. Defaults to `True`.

    Shape:
        `x0` and `x`: `(B, ..., d)`; output: `(B, ..., d)`.

    Raises:
        ValueError: if `in_features` is not a positive int, or (calling it) if
            `x0` and `x` differ in shape or do not end in `in_features`.

    Example:
        >>> layer = VectorCross(in_features=3)
        >>> with torch.no_grad():
        ...     _ = layer.projection.weight.fill_(1.0)
        >>> layer(torch.tensor([[0.1, 0.2, 0.3]]), torch.tensor([[0.4, 0.5, 0.6]]))
        tensor([[0.5500, 0.8000, 1.0500]], grad_fn=<AddBackward0>)
    """

    def __init__(self, in_features: int, use_bias: bool = True) -> None:
        super().__init__()
        if isinstance(in_features, bool) or not isinstance(in_features, int) or in_features < 1:
            raise ValueError(f"`in_features` must be a positive int. Received: in_features={in_features!r}")
        self.in_features = in_features
        self.use_bias = use_bias
        # w as a (1, d) Dense kernel: Dense's glorot init has exactly fan_in d, fan_out 1.
        self.projection = Dense(in_features, 1, bias=False)
        self.bias = nn.Parameter(torch.zeros(in_features)) if use_bias else None

    def forward(self, x0: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """Cross `x` with `x0`; `x` defaults to `x0` (the first layer of a stack)."""
        if x is None:
            x = x0
        if x0.shape[-1] != self.in_features or x.shape != x0.shape:
            raise ValueError(
                f"`x0` and `x` must have the same shape ending in in_features={self.in_features}. "
                f"Received: x0.shape={tuple(x0.shape)}, x.shape={tuple(x.shape)}"
            )
        out = x0 * self.projection(x) + x  # (B, ..., d) * (B, ..., 1) + (B, ..., d)
        if self.bias is not None:
            out = out + self.bias  # (B, ..., d)
        return out

    def kernel(self) -> torch.Tensor:
        """The equivalent `(d, d)` matrix `W = 1 wᵀ` acting on `x` as `W x` (every row is `wᵀ`).

        `x0 ⊙ (W x) = x0 · (xᵀ w)`, so explanations read this layer as a
        `FeatureCross` with this kernel.
        """
        return self.projection.weight.expand(self.in_features, self.in_features)  # (1, d) -> (d, d)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, use_bias={self.use_bias}"
