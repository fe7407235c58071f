"""`FeatureCross`: the DCN-V2 cross layer, with keras-rs' arguments and maths."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from dcnrank.layers.dense import Dense


def check_projection_dim(projection_dim: int | None, in_features: int) -> None:
    """Raise unless `projection_dim` is None or an int in `(0, in_features)`."""
    if projection_dim is not None and (
        isinstance(projection_dim, bool) or not isinstance(projection_dim, int) or not 0 < projection_dim < in_features
    ):
        raise ValueError(
            "`projection_dim` must be None or a positive int below `in_features` "
            f"({in_features}). Received: projection_dim={projection_dim!r}"
        )


class FeatureCross(nn.Module):
    """One cross layer of a Deep & Cross Network (DCN-V2, Wang et al. 2021).

    Builds explicit, bounded-degree feature interactions from the base input
    `x0` and the output `x` of the previous cross layer:

        y = x0 ⊙ (act(W x + b) + diag_scale · x) + x

    `W` is a full `(d, d)` matrix, or with `projection_dim = r` the low-rank
    product `U V` of a bias-free `d → r` projection `V` and an `r → d`
    projection `U` carrying the bias. Arguments and defaults follow
    `keras_rs.layers.FeatureCross`, plus PyTorch's explicit `in_features`.

    Args:
        in_features: int, the size `d` of the last axis of `x0` and `x`.
        projection_dim: int or None, the rank `r` of the low-rank kernel
            (`0 < r < d`); `None` (the default) gives a full-rank kernel.
        diag_scale: float, non-negative value added to the diagonal of `W`
            (`W + diag_scale · I`) to help training. Defaults to `0.0`.
        use_bias: bool, whether `W x` gets a bias `b`. Defaults to `True`.
        pre_activation: callable or None, the activation `act` applied to
            `W x + b` before the diagonal term. Defaults to `None` (identity).

    Shape:
        `x0` and `x`: `(B, ..., d)`; output: `(B, ..., d)`.

    Example:
        >>> layer = FeatureCross(in_features=3)
        >>> x0 = torch.randn(2, 3)
        >>> layer(x0).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        in_features: int,
        projection_dim: int | None = None,
        diag_scale: float = 0.0,
        use_bias: bool = True,
        pre_activation: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        if isinstance(in_features, bool) or not isinstance(in_features, int) or in_features < 1:
            raise ValueError(
                f"`in_features` must be a positive int. Received: in_features={in_features!r}"
            )
        check_projection_dim(projection_dim, in_features)
        if isinstance(diag_scale, bool) or not isinstance(diag_scale, int | float) or diag_scale < 0:
            raise ValueError(
                f"`diag_scale` must be a non-negative number. Received: diag_scale={diag_scale!r}"
            )
        if pre_activation is not None and not callable(pre_activation):
            raise ValueError(
                "`pre_activation` must be None or a callable. "
                f"Received: pre_activation={pre_activation!r}"
            )
        self.in_features = in_features
        self.projection_dim = projection_dim
        self.diag_scale = float(diag_scale)
        self.use_bias = use_bias
        self.pre_activation = pre_activation
        if projection_dim is None:
            self.down_proj: Dense | None = None
            self.dense = Dense(in_features, in_features, bias=use_bias)
        else:
            self.down_proj = Dense(in_features, projection_dim, bias=False)
            self.dense = Dense(projection_dim, in_features, bias=use_bias)

    def forward(self, x0: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """Cross `x` with `x0`; `x` defaults to `x0` (the first layer of a stack)."""
        if x is None:
            x = x0
        if x0.shape[-1] != self.in_features or x.shape != x0.shape:
            raise ValueError(
                f"`x0` and `x` must have the same shape ending in in_features={self.in_features}. "
                f"Received: x0.shape={tuple(x0.shape)}, x.shape={tuple(x.shape)}"
            )
        projected = x if self.down_proj is None else self.down_proj(x)  # (B, ..., d) or (B, ..., r)
        out = self.dense(projected)  # (B, ..., d)
        if self.pre_activation is not None:
            out = self.pre_activation(out)  # (B, ..., d)
        if self.diag_scale:
            out = out + self.diag_scale * x  # (B, ..., d)
        return torch.addcmul(x, x0, out)  # x0 ⊙ out + x in one pass: (B, ..., d)

    def kernel(self) -> torch.Tensor:
        """The effective `(d, d)` matrix `W` acting on `x` (`U V` when low rank), as `W x`."""
        weight = self.dense.weight  # (d, d) or (d, r)
        if self.down_proj is not None:
            weight = weight @ self.down_proj.weight  # (d, r) @ (r, d) -> (d, d)
        return weight

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, projection_dim={self.projection_dim}, "
            f"diag_scale={self.diag_scale}, use_bias={self.use_bias}"
        )
