"""`MLP`: the deep part of a DCN, a stack of ReLU dense layers."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dcnrank.layers.dense import Dense

# the normalisations an `MLP` can put after each dense layer, before its ReLU
NORMS = ("none", "batch", "layer")


class MLP(nn.Module):
    """A feed-forward stack `relu(N_k(W_k … relu(N_1(W_1 x + b_1)) … + b_k))`.

    `N_i` is the identity (`norm="none"`), a batch norm or a layer norm over the
    layer's `units[i]` outputs.

    Args:
        in_features: int, size of the input's last axis.
        units: sequence of positive ints, the width of each hidden layer, in
            order; empty gives the identity.
        dropout: float in `[0, 1)`, dropout after each activation. Defaults to 0.
        norm: str, `"none"` (default), `"batch"` (`torch.nn.BatchNorm1d` with torch's
            defaults, over every row of the input's leading axes; a training batch
            of one row, which has no variance, is normalised by the running
            statistics) or `"layer"` (`torch.nn.LayerNorm`, per row).

    Shape:
        input `(B, ..., in_features)`, output `(B, ..., units[-1])`
        (`in_features` when `units` is empty).

    Raises:
        ValueError: if a unit is not a positive int, `dropout` is outside `[0, 1)`,
            or `norm` is not one of `"none"`, `"batch"`, `"layer"`.

    Example:
        >>> mlp = MLP(192, [192, 192])
        >>> mlp(torch.zeros(4, 192)).shape
        torch.Size([4, 192])
        >>> MLP(3, [2], norm="batch")(torch.randn(5, 7, 3)).shape
        torch.Size([5, 7, 2])
    """

    def __init__(self, in_features: int, units: Sequence[int], dropout: float = 0.0, norm: str = "none") -> None:
        super().__init__()
        units = list(units)
        if any(isinstance(u, bool) or not isinstance(u, int) or u < 1 for u in units):
            raise ValueError(f"`units` must be positive ints. Received: units={units!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")
        if norm not in NORMS:
            raise ValueError(f"`norm` must be one of {', '.join(NORMS)}. Received: norm={norm!r}")
        layers: list[nn.Module] = []
        width = in_features
        for out in units:
            layers.append(Dense(width, out))
            if norm == "batch":
                layers.append(RowBatchNorm(out))
            elif norm == "layer":
                layers.append(nn.LayerNorm(out))
            layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = out
        self.layers = nn.Sequential(*layers)
        self.in_features = in_features
        self.out_features = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # (B, ..., in_features) -> (B, ..., out_features)


class RowBatchNorm(nn.BatchNorm1d):
    """`torch.nn.BatchNorm1d` over the last axis of `(B, ..., F)`, every leading position a row.

    The input is flattened to `(N, F)` and back, so its statistics are those of all `N`
    rows. In training mode a batch of at most one row (a tiny last batch, or a
    distributed rank's empty share) has no variance to measure: it is normalised by the
    running statistics, which it leaves unchanged.

    Example:
        >>> norm = RowBatchNorm(2).train()
        >>> norm(torch.tensor([[[1.0, 0.0]], [[3.0, 4.0]]])).flatten().tolist()
        [-0.9999949932098389, -0.9999987483024597, 0.9999949932098389, 0.9999987483024597]
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1])  # (N, F)
        if self.training and rows.shape[0] <= 1:
            out = nn.functional.batch_norm(
                rows, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        else:
            out = super().forward(rows)  # (N, F)
        return out.reshape(x.shape)  # (B, ..., F)
