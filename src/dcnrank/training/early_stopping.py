"""Train epoch by epoch, keep the weights of the best validation epoch, stop when it stalls."""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dcnrank.training.trainer import BatchStream, History, Trainer

__all__ = ["EarlyStoppingResult", "fit_with_early_stopping"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EarlyStoppingResult:
    """What `fit_with_early_stopping` did.

    Args:
        history: per epoch run, `loss`, `val_loss`, `val_rmse`, `val_mae`, `seconds`
            (as `Trainer.fit` records them).
        best_epoch: the 1-based epoch whose weights the model now holds.
        best_val_rmse: that epoch's validation RMSE (NaN when the trainer's
            `evaluate` reports none, e.g. a binary task's).
        stopped_early: whether training stopped before `config.epochs`.
        monitor: the record key that chose the best epoch. Defaults to `"val_rmse"`.
        best_value: that key's value at the best epoch (NaN if never set).
    """

    history: History
    best_epoch: int
    best_val_rmse: float
    stopped_early: bool
    monitor: str = "val_rmse"
    best_value: float = math.nan


def fit_with_early_stopping(
    trainer: Trainer,
    model: nn.Module,
    x: torch.Tensor | BatchStream,
    y: torch.Tensor | None,
    validation: tuple[torch.Tensor, torch.Tensor],
    patience: int,
    progress: bool | None = False,
    monitor: str = "val_rmse",
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
) -> EarlyStoppingResult:
    """Train `model` in place like `trainer.fit`, but keep the best epoch's weights.

    After each epoch the model is evaluated on `validation`; an epoch is better when
    its `monitor` value (validation RMSE by default) is strictly lower than every
    earlier one. Training stops once
    `patience` epochs in a row were not better, or after `trainer.config.epochs`, and
    the model is left with the best epoch's weights.

    It is one `Trainer.fit` run (one optimizer, one shuffle generator) whose
    `on_epoch` callback tracks the best epoch, so with a patience of at least
    `epochs` the epochs are exactly those of `trainer.fit(model, x, y, validation)`.

    Args:
        trainer: supplies the config (epochs, batch size, shuffling, seed), the loss,
            the optimizer (`make_optimizer`) and evaluation.
        model: the model to train.
        x: training inputs `(N, ...)`, or a `BatchStream` (a file read chunk by chunk).
        y: training labels `(N,)`, or None with a stream.
        validation: `(x_val, y_val)`.
        patience: int ≥ 1, epochs without improvement before stopping.
        progress: show a bar over epochs (`None`: only on a terminal).
        monitor: the validation record key to minimise, as `trainer.evaluate` names
            it with a `val_` prefix (e.g. `"val_loss"`). Defaults to `"val_rmse"`.
        checkpoint_dir: where `Trainer.fit` writes checkpoints; they also hold the
            best epoch, its weights and the patience count. Defaults to `None`.
        resume: continue from the checkpoint in `checkpoint_dir`, best epoch and
            patience count included. Defaults to `False`.

    Returns:
        The history and the best epoch.

    Raises:
        ValueError: if `x` and `y` differ in rows, either is empty, the validation
            set is empty, or `patience` is not a positive int.
        CheckpointError: if resuming from a missing, corrupt or foreign checkpoint.
    """
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
        raise ValueError(f"`patience` must be a positive int. Received: patience={patience!r}")
    if len(validation[0]) == 0 or len(validation[0]) != len(validation[1]):
        raise ValueError(
            "`validation` must be a non-empty (x, y) pair of equal rows. "
            f"Received: {len(validation[0])} and {len(validation[1])} rows"
        )
    best = _BestEpoch(model, monitor, patience)
    runner = copy.copy(trainer)  # a Trainer subclass keeps its own `evaluate`
    runner.progress = progress
    history = runner.fit(
        model, x, y, validation=validation, on_epoch=best, checkpoint_dir=checkpoint_dir, resume=resume
    )
    best_value, best_epoch, best_state = best.value, best.epoch, best.state
    if best_state is None:  # every monitored value was NaN: keep the last weights
        best_epoch, best_value = len(history.epochs), history.epochs[-1][monitor]
    else:
        model.load_state_dict(best_state)
    best_rmse = history.epochs[best_epoch - 1].get("val_rmse", math.nan)
    stopped = len(history.epochs) < trainer.config.epochs
    if stopped:
        log.info("stopped after epoch %d; best epoch %d", len(history.epochs), best_epoch)
    return EarlyStoppingResult(history, best_epoch, best_rmse, stopped, monitor, best_value)


class _BestEpoch:
    """The `on_epoch` callback: tracks the best epoch and its weights, counts stale epochs,
    and is `Resumable`, so a resumed run keeps its best epoch and patience count."""

    def __init__(self, model: nn.Module, monitor: str, patience: int) -> None:
        self.model, self.monitor, self.patience = model, monitor, patience
        self.value, self.epoch, self.stale = float("inf"), 0, 0
        self.state: dict[str, torch.Tensor] | None = None

    def __call__(self, record: dict[str, float]) -> bool:
        monitor = self.monitor
        if monitor not in record:
            raise ValueError(
                f"`monitor` must be a key of the epoch records {sorted(record)}. Received: monitor={monitor!r}"
            )
        log.info("epoch %d: loss %.4f, %s %.4f", record["epoch"], record["loss"], monitor, record[monitor])
        if record[monitor] < self.value:
            self.value, self.epoch, self.stale = record[monitor], int(record["epoch"]), 0
            self.state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            return False
        self.stale += 1
        return self.stale >= self.patience

    def checkpoint_state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        values = {"value": self.value, "epoch": self.epoch, "stale": self.stale}
        return values, dict(self.state or {})

    def restore_checkpoint_state(self, values: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        self.value, self.epoch, self.stale = float(values["value"]), int(values["epoch"]), int(values["stale"])
        if tensors:
            device = next(iter(self.model.state_dict().values())).device
            self.state = {k: v.to(device) for k, v in tensors.items()}
