"""The seed's protocol: train a fresh model per trial, evaluate on the test rows."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import torch
from torch import nn

from dcnrank.experiments.result import ModelResult
from dcnrank.models.dcn import count_parameters
from dcnrank.training.trainer import TrainConfig, Trainer


def trial_seed(seed: int, trial: int) -> int:
    """The seed of one trial: distinct per trial, reproducible from the run's seed."""
    return seed * 1_000 + trial


def run_trials(
    name: str,
    build: Callable[[], nn.Module],
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    config: TrainConfig,
    trials: int,
    seed: int,
    progress: bool | None = False,
) -> tuple[ModelResult, nn.Module]:
    """Train `trials` freshly initialised models one after another.

    Trial `t` initialises its weights and shuffles from `trial_seed(seed, t)`,
    so a run is reproducible and trials differ.

    Returns:
        The model's result over all trials, and the first trial's trained model.
    """
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"`trials` must be a positive int. Received: trials={trials!r}")
    result = ModelResult()
    first: nn.Module | None = None
    began = time.perf_counter()
    for trial in range(trials):
        s = trial_seed(seed, trial)
        torch.manual_seed(s)
        model = build()
        trainer = Trainer(replace(config, seed=s), progress=progress, desc=f"{name} {trial + 1}/{trials}")
        trainer.fit(model, *train)
        metrics = trainer.evaluate(model, *test)
        result.rmse.append(metrics["rmse"])
        result.mae.append(metrics["mae"])
        result.params = count_parameters(model)
        if first is None:
            first = model
    result.seconds = time.perf_counter() - began
    assert first is not None  # trials >= 1 was checked above
    return result, first
