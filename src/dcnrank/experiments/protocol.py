"""The seed's protocol: train a fresh model per trial, evaluate on the test rows."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from dcnrank.config.model_config import DCNConfig
from dcnrank.config.train_config import TrainConfig
from dcnrank.experiments.result import ExperimentResult, ModelResult
from dcnrank.models.dcn import count_parameters
from dcnrank.training.stacked import StackedTrainer
from dcnrank.training.trainer import Trainer


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
    rounding, in a fraction of the time. A single trial has nothing to stack and
    trains alone (`Trainer`): under `vmap` the toy's steps took twice as long.
    Weights are initialised on the CPU (so a seed gives the same start on every
    device), then moved to `device`.

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
    train = (train[0].to(device), train[1].to(device))
    test = (test[0].to(device), test[1].to(device))
    result = ModelResult(params=count_parameters(models[0]))
    began = time.perf_counter()
    if vectorize and trials > 1:
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


def run_experiment(
    experiment: str,
    model_configs: Mapping[str, DCNConfig],
    models: Sequence[str],
    build: Callable[[DCNConfig], nn.Module],
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    config: TrainConfig,
    trials: int,
    seed: int,
    progress: bool | None,
    vectorize: bool,
    device: str | torch.device,
    began: float,
    settings: Mapping[str, Any] | None = None,
    info: dict[str, Any] | None = None,
) -> ExperimentResult:
    """Run `trials` trials of each named model and gather them into one result.

    Args:
        experiment: the experiment's name ("toy", "movielens").
        model_configs: every model the experiment knows, by name.
        models: the names to run, in order; unknown names are an error.
        build: makes a fresh model from its config.
        began: `time.perf_counter()` when the experiment started (data loading counts).
        settings: extra settings recorded in the result's `config`.
        info: facts about the data recorded at the top of the result's JSON.
        The others: as `run_trials`.

    Raises:
        ValueError: when `models` is empty or names an unknown model.
    """
    unknown = [m for m in models if m not in model_configs]
    if unknown or not models:
        raise ValueError(f"`models` must name some of {', '.join(model_configs)}. Received: models={tuple(models)!r}")
    results, trained = {}, {}
    for name in models:
        results[name], trained[name] = run_trials(
            name,
            functools.partial(build, model_configs[name]),
            train,
            test,
            config,
            trials,
            seed,
            progress,
            vectorize,
            device,
        )
    return ExperimentResult(
        experiment=experiment,
        config={
            **(settings or {}),
            "trials": trials,
            "seed": seed,
            "vectorize": vectorize,
            "device": str(device),
            "train": config.to_dict(),
            "models": {name: model_configs[name].to_dict() for name in models},
        },
        models=results,
        seconds=time.perf_counter() - began,
        info=info or {},
        trained=trained,
    )
