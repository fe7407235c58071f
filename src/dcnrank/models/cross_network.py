"""`CrossNetwork`: a stack of `FeatureCross` layers sharing the base input x0."""

from __future__ import annotations

import torch
from torch import nn

from dcnrank.layers.feature_cross import FeatureCross


class CrossNetwork(nn.Module):
    """`num_layers` cross layers: `x_{l+1} = FeatureCross_l(x0, x_l)`, `x_0 = x0`.

    With `L` layers the network holds polynomial crosses of `x0` up to degree
    `L + 1`.

    Args:
        in_features: int, size `d` of the input's last axis.
        num_layers: int, number of cross layers (≥ 1). Defaults to 1.
        projection_dim: int or None, low-rank size of every layer's kernel.
        diag_scale: float, see `FeatureCross`. Defaults to 0.
        use_bias: bool, see `FeatureCross`. Defaults to `True`.

    Shape:
        `(B, ..., d) -> (B, ..., d)`.

    Example:
        >>> net = CrossNetwork(6, num_layers=2, projection_dim=2)
        >>> net(torch.zeros(5, 6)).shape
        torch.Size([5, 6])
    """

    def __init__(
        self,
        in_features: int,
        num_layers: int = 1,
        projection_dim: int | None = None,
        diag_scale: float = 0.0,
        use_bias: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(
                f"`num_layers` must be a positive int. Received: num_layers={num_layers!r}"
            )
        self.layers = nn.ModuleList(
            FeatureCross(in_features, projection_dim, diag_scale, use_bias)
            for _ in range(num_layers)
        )
        self.in_features = in_features
        self.out_features = in_features

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0  # (B, ..., d)
        for layer in self.layers:
            x = layer(x0, x)  # (B, ..., d)
        return x
