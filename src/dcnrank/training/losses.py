"""Loss functions `(predictions, labels) -> scalar` for `Trainer(loss_fn=...)`."""

from __future__ import annotations

import torch

__all__ = ["bce_with_logits"]


def bce_with_logits(predictions: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy of click labels given logits, for click-through models.

    With `z` the logit (the model's raw output) and `y ∈ {0, 1}`:

        loss = mean(−y log σ(z) − (1 − y) log(1 − σ(z))) = mean(softplus(z) − y z)

    computed stably from `z` (no sigmoid, no clipping), so a DCN keeps its
    linear head and `torch.sigmoid(model(x))` is the click probability. Labels
    may be ints or bools; they are cast to the predictions' dtype. The loss does
    not check that labels are 0 or 1 (that would cost a device sync per batch):
    check the data once with `dcnrank.metrics.validate_binary_labels`.

    Args:
        predictions: `(B,)` logits.
        labels: `(B,)` labels in {0, 1}.

    Returns:
        A scalar tensor, differentiable in `predictions`.

    Raises:
        ValueError: if the shapes differ (broadcasting `(B,)` against `(B, 1)`
            would silently compare every row with every label).

    Example:
        >>> round(float(bce_with_logits(torch.tensor([0.0, 0.0]), torch.tensor([1, 0]))), 4)
        0.6931
        >>> from dcnrank.training import Trainer
        >>> Trainer(loss_fn=bce_with_logits).loss_fn is bce_with_logits
        True
    """
    if predictions.shape != labels.shape:
        raise ValueError(
            "`predictions` and `labels` must have the same shape. "
            f"Received: predictions.shape={tuple(predictions.shape)}, labels.shape={tuple(labels.shape)}"
        )
    return torch.nn.functional.binary_cross_entropy_with_logits(predictions, labels.to(predictions.dtype))
