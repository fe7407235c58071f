"""Regression metrics over whole data sets (not averages of batch values)."""

from __future__ import annotations

import torch


def _check(predictions: torch.Tensor, labels: torch.Tensor) -> None:
    if predictions.shape != labels.shape:
        raise ValueError(
            "`predictions` and `labels` must have the same shape. "
            f"Received: predictions.shape={tuple(predictions.shape)}, labels.shape={tuple(labels.shape)}"
        )
    if predictions.numel() == 0:
        raise ValueError("`predictions` must not be empty. Received: 0 rows")


def rmse(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    """Root mean squared error `sqrt(mean((p - y)²))` over all rows.

    Example:
        >>> rmse(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 2.0]))
        1.0
    """
    _check(predictions, labels)
    diff = predictions.double() - labels.double()
    return float(diff.square().mean().sqrt())


def mae(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean absolute error `mean(|p - y|)` over all rows.

    Example:
        >>> mae(torch.tensor([1.0, 4.0]), torch.tensor([2.0, 2.0]))
        1.5
    """
    _check(predictions, labels)
    return float((predictions.double() - labels.double()).abs().mean())
