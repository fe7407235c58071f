"""`MLP`: the deep part of a DCN, a stack of ReLU dense layers."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dcnrank.layers.dense import Dense


class MLP(nn.Module):
    """A feed-forward stack `relu(W_k … relu(W_1 x + b_1) … + b_k)`.

    Args:
        in_features: int, size of the input's last axis.
        units: sequence of positive ints, the width of each hidden layer, in
            order; empty gives the identity.
        dropout: float in `[0, 1)`, dropout after each activation. Defaults to 0.

    Shape:
        input `(B, ..., in_features)`, output `(B, ..., units[-1])`
        (`in_features` when `units` is empty).

    Example:
        >>> mlp = MLP(192, [192, 192])
        >>> mlp(torch.zeros(4, 192)).shape
        torch.Size([4, 192])
    """

    def __init__(self, in_features: int, units: Sequence[int], dropout: float = 0.0) -> None:
        super().__init__()
        units = list(units)
        if any(isinstance(u, bool) or not isinstance(u, int) or u < 1 for u in units):
            raise ValueError(f"`units` must be positive ints. Received: units={units!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")
        layers: list[nn.Module] = []
        width = in_features
        for out in units:
            layers.append(Dense(width, out))
            layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = out
        self.layers = nn.Sequential(*layers)
        self.in_features = in_features
        self.out_features = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # (B, ..., in_features) -> (B, ..., out_features)
