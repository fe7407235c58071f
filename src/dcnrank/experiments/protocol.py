"""The seed's protocol: train a fresh model per trial, evaluate on the test rows."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import torch
from torch import nn

from dcnrank.experiments.result import ModelResult
from dcnrank.models.dcn import count_parameters
from dcnrank.training.stacked import StackedTrainer
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
    vectorize: bool = True,
    device: str | torch.device = "cpu",
) -> tuple[ModelResult, nn.Module]:
    """Train `trials` freshly initialised models and test each.

    Trial `t` initialises its weights and shuffles from `trial_seed(seed, t)`,
    so a run is reproducible and trials differ. With `vectorize` (the default)
    all trials train together as one stacked model (`StackedTrainer`), which
    gives the same numbers as training them one after another, up to float
    rounding, in a fraction of the time. Weights are initialised on the CPU
    (so a seed gives the same start on every device), then moved to `device`.

    Returns:
        The model's result over all trials, and the first trial's trained model.
    """
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"`trials` must be a positive int. Received: trials={trials!r}")
    seeds = [trial_seed(seed, t) for t in range(trials)]
    models = []
    for s in seeds:
        torch.manual_seed(s)
        models.append(build().to(device))
    train = tuple(t.to(device) for t in train)
    test = tuple(t.to(device) for t in test)
    result = ModelResult(params=count_parameters(models[0]))
    began = time.perf_counter()
    if vectorize:
        trainer = StackedTrainer(config, seeds, progress=progress, desc=f"{name} ×{trials}")
        trainer.fit(models, *train)
        metrics = trainer.evaluate(models, *test)
    else:
        metrics = []
        for t, (s, model) in enumerate(zip(seeds, models, strict=True)):
            single = Trainer(replace(config, seed=s), progress=progress, desc=f"{name} {t + 1}/{trials}")
            single.fit(model, *train)
            metrics.append(single.evaluate(model, *test))
    result.rmse = [m["rmse"] for m in metrics]
    result.mae = [m["mae"] for m in metrics]
    result.seconds = time.perf_counter() - began
    return result, models[0].cpu()
