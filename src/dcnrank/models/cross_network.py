"""`CrossNetwork`: a stack of cross layers sharing the base input x0."""

from __future__ import annotations

import torch
from torch import nn

from dcnrank.config.model_config import cross_options_problem
from dcnrank.layers.feature_cross import FeatureCross
from dcnrank.layers.mixture_cross import MixtureCross
from dcnrank.layers.vector_cross import VectorCross


class CrossNetwork(nn.Module):
    """`num_layers` cross layers: `x_{l+1} = Cross_l(x0, x_l)`, `x_0 = x0`.

    With `L` layers the network holds polynomial crosses of `x0` up to degree
    `L + 1`. The layer type is `cross_type`:

    - `"matrix"`: `FeatureCross` (DCN-V2), `x0 ⊙ (W x + b + diag_scale · x) + x`;
    - `"vector"`: `VectorCross` (DCN v1), `x0 · (xᵀ w) + b + x`;
    - `"mixture"`: `MixtureCross` (DCN-Mix), `Σ_k G_k(x) E_k(x) + x` with
      `num_experts` low-rank experts of rank `projection_dim`.

    Args:
        in_features: int, size `d` of the input's last axis.
        num_layers: int, number of cross layers (≥ 1). Defaults to 1.
        projection_dim: int or None, low-rank size of every layer's kernel
            (`"matrix"`) or of every expert (`"mixture"`); must be None for
            `"vector"`.
        diag_scale: float, see `FeatureCross`; must be 0 unless `"matrix"`. Defaults to 0.
        use_bias: bool, see `FeatureCross` and `VectorCross` (a mixture's experts
            always have biases). Defaults to `True`.
        cross_type: str, `"matrix"` (default), `"vector"` or `"mixture"`.
        num_experts: int, experts per `"mixture"` layer. Defaults to 4.

    Shape:
        `(B, ..., d) -> (B, ..., d)`.

    Raises:
        ValueError: if `num_layers` is not a positive int, `cross_type` is
            unknown, or an option does not apply to `cross_type`.

    Example:
        >>> net = CrossNetwork(6, num_layers=2, projection_dim=2)
        >>> net(torch.zeros(5, 6)).shape
        torch.Size([5, 6])
        >>> type(CrossNetwork(6, num_layers=3, cross_type="vector").layers[2]).__name__
        'VectorCross'
    """

    def __init__(
        self,
        in_features: int,
        num_layers: int = 1,
        projection_dim: int | None = None,
        diag_scale: float = 0.0,
        use_bias: bool = True,
        cross_type: str = "matrix",
        num_experts: int = 4,
    ) -> None:
        super().__init__()
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"`num_layers` must be a positive int. Received: num_layers={num_layers!r}")
        problem = cross_options_problem(cross_type, projection_dim, diag_scale)
        if problem:
            raise ValueError(problem)

        def make() -> nn.Module:
            if cross_type == "vector":
                return VectorCross(in_features, use_bias)
            if cross_type == "mixture":
                return MixtureCross(in_features, num_experts, projection_dim)
            return FeatureCross(in_features, projection_dim, diag_scale, use_bias)

        self.layers = nn.ModuleList(make() for _ in range(num_layers))
        self.cross_type = cross_type
        self.in_features = in_features
        self.out_features = in_features

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0  # (B, ..., d)
        for layer in self.layers:
            x = layer(x0, x)  # (B, ..., d)
        return x
