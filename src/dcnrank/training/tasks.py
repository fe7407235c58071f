"""What a feature spec's `task` means for training and scoring: its loss, its metrics, and
how raw model outputs become predictions.

- ``regression``: MSE loss; RMSE and MAE; the output is the prediction.
- ``binary``: binary cross-entropy on logits; AUC and log loss (and group AUC when the
  spec names a group column); the prediction is the probability `σ(output)`.
- ``ranking``: a ranking loss over lists of one group's rows (`train.loss`,
  `dcnrank.training.ranking_losses`; "auto" is :data:`DEFAULT_RANKING_LOSS`); NDCG@k, MAP@k,
  MRR, P@k and R@k over the groups (:data:`RANKING_K`, relevant from label
  :data:`RANKING_RELEVANT`); the prediction is the raw score, meaningful within a group.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from dcnrank.config.data_config import MONITORS
from dcnrank.config.train_config import TrainConfig
from dcnrank.data.spec.feature_spec import TASKS
from dcnrank.metrics.classification import auc, group_auc, logloss
from dcnrank.metrics.ranking import ranking_metrics
from dcnrank.metrics.regression import mae, rmse
from dcnrank.training.list_batches import list_loss
from dcnrank.training.losses import bce_with_logits
from dcnrank.training.ranking_losses import RANKING_LOSSES, with_pointwise
from dcnrank.training.trainer import LossFn, Trainer, mse_loss

__all__ = [
    "DEFAULT_RANKING_LOSS",
    "RANKING_K",
    "RANKING_RELEVANT",
    "TaskTrainer",
    "task_loss",
    "task_metrics",
    "task_monitor",
    "task_predictions",
]

# `train.loss = "auto"` on a ranking task (chosen on validation rows: docs/ranking.md)
DEFAULT_RANKING_LOSS = "pairwise_logistic"
# the cutoff of the ranking metrics of training and of `dcnrank evaluate`'s default
RANKING_K = 10
# a label at or above it is relevant to MAP, MRR, precision and recall of a ranking task
RANKING_RELEVANT = 1.0


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"`task` must be one of {', '.join(TASKS)}. Received: task={task!r}")


def task_loss(task: str, loss: str = "auto", pointwise_weight: float = 0.0) -> LossFn:
    """The training loss of `task`: MSE for ``regression``, BCE with logits for ``binary``,
    the ranking loss `loss` for ``ranking`` ("auto": :data:`DEFAULT_RANKING_LOSS`), plus
    `pointwise_weight` times the lists' MSE (`ranking_losses.with_pointwise`).

    Raises:
        ValueError: on an unknown task or loss, or a ranking loss for a task other than ranking.

    Example:
        >>> task_loss("binary").__name__, task_loss("ranking", "list_mle").__name__
        ('bce_with_logits', 'list_mle_loss')
    """
    _check_task(task)
    if task == "ranking":
        name = DEFAULT_RANKING_LOSS if loss == "auto" else loss
        if name not in RANKING_LOSSES:
            raise ValueError(f"`loss` must be auto or one of {', '.join(RANKING_LOSSES)}. Received: loss={loss!r}")
        return with_pointwise(RANKING_LOSSES[name], pointwise_weight)
    if pointwise_weight:
        raise ValueError(
            f'`pointwise_weight` adds to a ranking loss: it applies to task = "ranking". Received: task={task!r}'
        )
    if loss != "auto":
        raise ValueError(
            f'`loss` {loss!r} orders the rows of a group: it applies to task = "ranking" (a spec with a group). '
            f"Received: task={task!r}"
        )
    return bce_with_logits if task == "binary" else mse_loss


def task_monitor(task: str, monitor: str) -> tuple[str, bool]:
    """The epoch-record key that picks the best epoch for `data.monitor`, and whether higher is better.

    ``"loss"``: `val_loss`, lower is better. ``"metric"``: the task's metric, `val_auc`
    for ``binary`` (higher is better), `val_rmse` for ``regression`` (lower is better) and
    `val_ndcg@10` for ``ranking`` (higher is better), as :class:`TaskTrainer`'s records
    name them.

    Raises:
        ValueError: on an unknown task or monitor.

    Example:
        >>> task_monitor("binary", "metric"), task_monitor("regression", "metric"), task_monitor("binary", "loss")
        (('val_auc', True), ('val_rmse', False), ('val_loss', False))
    """
    _check_task(task)
    if monitor not in MONITORS:
        raise ValueError(f"`monitor` must be one of {', '.join(MONITORS)}. Received: monitor={monitor!r}")
    if monitor == "loss":
        return "val_loss", False
    if task == "ranking":
        return f"val_ndcg@{RANKING_K}", True
    return ("val_auc", True) if task == "binary" else ("val_rmse", False)


def task_predictions(task: str, outputs: torch.Tensor) -> torch.Tensor:
    """Raw model outputs as predictions: probabilities `σ(z)` for ``binary``, unchanged otherwise
    (a ranking score orders the rows of a group).

    Example:
        >>> task_predictions("binary", torch.tensor([0.0])).tolist()
        [0.5]
    """
    _check_task(task)
    return torch.sigmoid(outputs) if task == "binary" else outputs


def task_metrics(
    task: str, labels: torch.Tensor, outputs: torch.Tensor, groups: np.ndarray | None = None
) -> dict[str, Any]:
    """Metrics of raw outputs against labels, over all rows.

    ``regression``: `loss` (MSE), `rmse`, `mae`. ``binary``: `loss` and `logloss` (both
    the mean BCE of the logits), `auc` (None when the labels hold one class only), and
    with `groups` `group_auc` (None when no group holds both classes) and `groups`
    (how many distinct groups). ``ranking``: `ranking_metrics` over `groups` at
    :data:`RANKING_K` (`ndcg@10`, `map@10`, `mrr`, `precision@10`, `recall@10`, `groups`);
    ties in score keep the rows' order.

    Args:
        task: ``"regression"``, ``"binary"`` or ``"ranking"``.
        labels: `(N,)` labels.
        outputs: `(N,)` raw model outputs (logits for binary).
        groups: `(N,)` group of each row, or None (ranking needs them).

    Returns:
        The metrics.

    Raises:
        ValueError: on an unknown task or malformed inputs (see `dcnrank.metrics`).

    Example:
        >>> task_metrics("binary", torch.tensor([0.0, 1.0]), torch.tensor([-1.0, 2.0]))["auc"]
        1.0
    """
    _check_task(task)
    outputs = outputs.detach().float().cpu()
    labels = labels.detach().float().cpu()
    if task == "ranking":
        if groups is None:
            raise ValueError("ranking metrics need the group of each row. Received: groups=None")
        return ranking_metrics(labels.numpy(), outputs.numpy(), groups, k=RANKING_K, threshold=RANKING_RELEVANT)
    if task == "regression":
        error = rmse(outputs, labels)
        return {"loss": error**2, "rmse": error, "mae": mae(outputs, labels)}
    y, z = labels.numpy(), outputs.numpy()
    loss = logloss(y, z, from_logits=True)
    metrics: dict[str, Any] = {"loss": loss, "logloss": loss, "auc": _undefined_as_none(auc, y, z)}
    if groups is not None:
        metrics["group_auc"] = _undefined_as_none(group_auc, y, z, groups)
        metrics["groups"] = len(np.unique(groups))
    return metrics


def _undefined_as_none(metric: Any, *args: Any) -> float | None:
    """The metric, or None where it is undefined (one class only), which a small slice can be."""
    try:
        return metric(*args)
    except ValueError as error:
        if "both classes" in str(error):
            return None
        raise


class TaskTrainer(Trainer):
    """A `Trainer` whose loss and validation metrics follow a spec's task.

    Its `evaluate` reports :func:`task_metrics` (without group AUC, which is computed
    once at the end), so per-epoch records hold `val_loss`, `val_auc`, `val_logloss`
    for a binary task, `val_loss`, `val_rmse`, `val_mae` for regression, and for ranking
    the ranking metrics over the validation rows' `groups` and `val_loss`, the ranking
    loss over their lists as a training epoch splits them (`list_loss`).

    Args:
        task: ``"regression"``, ``"binary"`` or ``"ranking"``.
        config: the training settings (`config.loss`: :func:`task_loss`).
        progress: show a bar (`None`: only on a terminal).
        desc: label of the progress bar.
        groups: the group of each validation row (a ranking task evaluates by group).

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.Flatten(0))
        >>> x, y = torch.randn(64, 2), (torch.arange(64) % 2).float()
        >>> sorted(TaskTrainer("binary", TrainConfig(epochs=1)).evaluate(model, x, y))
        ['auc', 'logloss', 'loss']
    """

    def __init__(
        self,
        task: str,
        config: TrainConfig | None = None,
        progress: bool | None = False,
        desc: str = "train",
        groups: np.ndarray | None = None,
    ) -> None:
        config = config or TrainConfig()
        loss_fn = task_loss(task, config.loss, config.pointwise_weight)
        super().__init__(config, loss_fn=loss_fn, progress=progress, desc=desc)
        self.task, self.groups = task, groups

    def evaluate(self, model: nn.Module, x: Any, y: torch.Tensor) -> dict[str, float]:
        """:func:`task_metrics` of `model` on `(x, y)` (and the ranking loss of a ranking task)."""
        outputs = self.predict(model, x)
        if self.task != "ranking":
            return task_metrics(self.task, y, outputs)
        if self.groups is None:
            raise ValueError("a ranking task evaluates by group; give TaskTrainer the validation rows' `groups`")
        c = self.config
        loss = list_loss(self.loss_fn, outputs, y, self.groups, c.list_size, c.lists_per_batch)
        return {"loss": loss, **task_metrics(self.task, y, outputs, self.groups)}
