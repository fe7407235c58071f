"""Train epoch by epoch, keep the weights of the best validation epoch, stop when it stalls."""

from __future__ import annotations

import copy
import logging
import math
from collections import deque
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
        best_value: that key's value at the best epoch (NaN if never set); with
            `average_epochs > 1` it is the best epoch's own, not the averaged weights'.
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
    higher_is_better: bool = False,
    average_epochs: int = 1,
) -> EarlyStoppingResult:
    """Train `model` in place like `trainer.fit`, but keep the best epoch's weights.

    After each epoch the model is evaluated on `validation`; an epoch is better when
    its `monitor` value (validation RMSE by default) is strictly lower than every
    earlier one (strictly higher with `higher_is_better`; a None or NaN value is never
    better). Training stops once
    `patience` epochs in a row were not better, or after `trainer.config.epochs`, and
    the model is left with the best epoch's weights, or with `average_epochs > 1` the
    element-wise mean of the weights of the best epoch and of the `average_epochs − 1`
    epochs just before it (fewer when not that many ran). Floating-point tensors are
    averaged (batch-norm running statistics too), other tensors (batch-norm batch
    counts) are the best epoch's, and a tensor the same in every averaged epoch (a
    constant buffer) is kept as it is.

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
        monitor: the validation record key to minimise (maximise with
            `higher_is_better`), as `trainer.evaluate` names it with a `val_` prefix
            (e.g. `"val_loss"`, `"val_auc"`). Defaults to `"val_rmse"`.
        checkpoint_dir: where `Trainer.fit` writes checkpoints; they also hold the
            best epoch, its weights and the patience count. Defaults to `None`.
        resume: continue from the checkpoint in `checkpoint_dir`, best epoch and
            patience count included. Defaults to `False`.
        higher_is_better: bool, maximise `monitor` (an AUC) rather than minimise it.
            Defaults to `False`.
        average_epochs: int ≥ 1, how many epochs' weights, ending at the best one,
            are averaged. Defaults to 1 (the best epoch's own weights).

    Returns:
        The history and the best epoch.

    Raises:
        ValueError: if `x` and `y` differ in rows, either is empty, the validation
            set is empty, or `patience` or `average_epochs` is not a positive int.
        CheckpointError: if resuming from a missing, corrupt or foreign checkpoint.
    """
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
        raise ValueError(f"`patience` must be a positive int. Received: patience={patience!r}")
    if isinstance(average_epochs, bool) or not isinstance(average_epochs, int) or average_epochs < 1:
        raise ValueError(f"`average_epochs` must be a positive int. Received: average_epochs={average_epochs!r}")
    if len(validation[0]) == 0 or len(validation[0]) != len(validation[1]):
        raise ValueError(
            "`validation` must be a non-empty (x, y) pair of equal rows. "
            f"Received: {len(validation[0])} and {len(validation[1])} rows"
        )
    best = _BestEpoch(model, monitor, patience, higher_is_better, average_epochs)
    runner = copy.copy(trainer)  # a Trainer subclass keeps its own `evaluate`
    runner.progress = progress
    history = runner.fit(
        model, x, y, validation=validation, on_epoch=best, checkpoint_dir=checkpoint_dir, resume=resume
    )
    best_value, best_epoch, best_state = best.value, best.epoch, best.state
    if best_state is None:  # every monitored value was NaN or None: keep the last weights
        best_epoch, best_value = len(history.epochs), _number(history.epochs[-1][monitor])
    elif best_epoch != len(history.epochs) or average_epochs > 1:  # else the model holds them already
        model.load_state_dict(best_state)
    best_rmse = history.epochs[best_epoch - 1].get("val_rmse", math.nan)
    stopped = len(history.epochs) < trainer.config.epochs
    if stopped:
        log.info("stopped after epoch %d; best epoch %d", len(history.epochs), best_epoch)
    return EarlyStoppingResult(history, best_epoch, best_rmse, stopped, monitor, best_value)


class _BestEpoch:
    """The `on_epoch` callback: tracks the best epoch and its (averaged) weights, counts
    stale epochs, and is `Resumable`, so a resumed run keeps its best epoch, patience
    count and the window of recent epochs' weights."""

    def __init__(
        self, model: nn.Module, monitor: str, patience: int, higher_is_better: bool = False, average_epochs: int = 1
    ) -> None:
        self.model, self.monitor, self.patience = model, monitor, patience
        self.higher_is_better = higher_is_better
        self.value, self.epoch, self.stale = -math.inf if higher_is_better else math.inf, 0, 0
        self.state: dict[str, torch.Tensor] | None = None
        # the weights of the last `average_epochs` epochs, oldest first (none kept for 1)
        self.window: deque[dict[str, torch.Tensor]] = deque(maxlen=average_epochs if average_epochs > 1 else 0)

    def __call__(self, record: dict[str, float]) -> bool:
        monitor = self.monitor
        if monitor not in record:
            raise ValueError(
                f"`monitor` must be a key of the epoch records {sorted(record)}. Received: monitor={monitor!r}"
            )
        value = _number(record[monitor])
        log.info("epoch %d: loss %.4f, %s %.4f", record["epoch"], record["loss"], monitor, value)
        if self.window.maxlen:
            self.window.append(_snapshot(self.model))
        better = value > self.value if self.higher_is_better else value < self.value  # NaN: never
        if better:
            self.value, self.epoch, self.stale = value, int(record["epoch"]), 0
            self.state = _average(list(self.window)) if self.window else _snapshot(self.model)
            return False
        self.stale += 1
        return self.stale >= self.patience

    def checkpoint_state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        values = {"value": self.value, "epoch": self.epoch, "stale": self.stale, "window": len(self.window)}
        tensors = dict(self.state or {})
        for i, state in enumerate(self.window):
            tensors.update({f"{_WINDOW}{i}/{name}": t for name, t in state.items()})
        return values, tensors

    def restore_checkpoint_state(self, values: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        self.value, self.epoch, self.stale = float(values["value"]), int(values["epoch"]), int(values["stale"])
        device = next((v.device for v in self.model.state_dict().values()), torch.device("cpu"))
        best = {k: v.to(device) for k, v in tensors.items() if not k.startswith(_WINDOW)}
        self.state = best or None
        self.window.clear()
        for i in range(int(values.get("window", 0))):
            prefix = f"{_WINDOW}{i}/"
            self.window.append(
                {k.removeprefix(prefix): v.to(device) for k, v in tensors.items() if k.startswith(prefix)}
            )


# the prefix of a window state's tensors in a checkpoint (state-dict names hold no "/")
_WINDOW = "window/"


def _number(value: float | None) -> float:
    """A record's value as a float: None (an AUC undefined on one class) is NaN."""
    return math.nan if value is None else float(value)


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _average(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of `states` (oldest first); non-float tensors and tensors
    equal in every state are the latest's."""
    latest = states[-1]
    averaged = {}
    for name, tensor in latest.items():
        same = all(torch.equal(state[name], tensor) for state in states[:-1])
        if tensor.is_floating_point() and not same:
            averaged[name] = torch.stack([state[name] for state in states]).mean(dim=0)
        else:
            averaged[name] = tensor.clone()
    return averaged
