"""`DataConfig`: which data a training run reads, how it splits it, and when it stops."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from dcnrank.config.errors import ConfigError
from dcnrank.config.rules import Rule, at_least, check_field, open_interval

__all__ = [
    "DATASET_ONLY_KEYS",
    "MONITORS",
    "RULES",
    "SPLIT_NAMES",
    "VALIDATION_POLICIES",
    "DataConfig",
    "refuse_changed",
]

# the train/test splits a dataset source may offer (which ones a release has: `MovieLensSource.splits`)
SPLIT_NAMES: tuple[str, ...] = ("random", "leaky", "u1", "u2", "u3", "u4", "u5", "ua", "ub", "temporal")
# how the validation slice is carved from the training rows (`dcnrank.data.holdout`)
VALIDATION_POLICIES = ("last", "random")
# what picks the best epoch: the validation loss, or the task's metric (AUC or RMSE)
MONITORS = ("loss", "metric")

# `data.*` key -> its range rule, checked when a configuration is read (`check_field`)
RULES: Mapping[str, Rule] = {
    "data.seed": (at_least(0), "must be ≥ 0"),
    "data.data_dir": (
        lambda v: v is None or (v.strip() != "" and "\x00" not in v),
        "must be a folder path (not empty, no NUL character), or none",
    ),
    "data.split": (
        lambda v: v is None or v in SPLIT_NAMES,
        f"must be one of {', '.join(SPLIT_NAMES)}, or none",
    ),
    "data.validation_fraction": (open_interval(0.0, 1.0), "must be in (0, 1)"),
    "data.patience": (at_least(1), "must be ≥ 1"),
    "data.validation": (lambda v: v in VALIDATION_POLICIES, f"must be one of {', '.join(VALIDATION_POLICIES)}"),
    "data.max_train_rows": (at_least(2), "must be ≥ 2 (one training and one validation row), or none for all"),
    "data.shuffle_buffer": (at_least(1), "must be ≥ 1"),
    "data.validation_max_rows": (at_least(1), "must be ≥ 1"),
    "data.monitor": (lambda v: v in MONITORS, f"must be one of {', '.join(MONITORS)}"),
    "data.average_epochs": (at_least(1), "must be ≥ 1"),
}


@dataclass(frozen=True)
class DataConfig:
    """The data side of a training run: which MovieLens split (`--dataset` runs), and, for
    every run, the validation slice, early stopping and (own tables) streaming.

    `split` and `data_dir` (:data:`DATASET_ONLY_KEYS`) are read by `--dataset` runs (and
    `dcnrank train` without `--data`, which trains MovieLens 100K); a run on one's own
    table (`--data`) refuses them when set.

    Args:
        split: str or None, the dataset's train/test split (`random`, `leaky`,
            `u1`…`u5`, `ua`, `ub`, `temporal`; which ones a release has:
            `MovieLensSource.splits`). Defaults to None: the release's own default
            (`u1` for 100K, `random` for the others).
        seed: int, seeds the dataset's `random` split and the held-out validation rows.
            Defaults to 0.
        data_dir: str or None, where the dataset is (None: `$DCNRANK_DATA`, the cache, or
            a download).
        validation_fraction: float in (0, 1), the share of the training rows held out to
            pick the best epoch. Defaults to 0.1.
        patience: int ≥ 1, epochs without a better monitored value (`monitor`) before
            training stops. Defaults to 2.
        validation: str, how the validation slice is carved from the training rows:
            `"last"` rows (default) or a seeded `"random"` share (for sorted splits
            such as `u1`…`u5`, whose last rows are the last users).
        max_train_rows: int ≥ 2 or None, keep only the first training rows (quick
            runs). Defaults to None (all).
        stream: bool, own tables (`--data`) only: read the file chunk by chunk instead
            of whole (`dcnrank.data.streaming.streamed_table`), for files larger than memory.
            Defaults to False.
        shuffle_buffer: int ≥ 1, with `stream`: rows held to shuffle batches across
            chunks. Defaults to 262,144.
        validation_max_rows: int ≥ 1, with `stream`: at most this many held-out rows
            (held in memory); later rows all train. Defaults to 100,000.
        monitor: str, what picks the best epoch and counts the patience: `"loss"`
            (default): the validation loss, lower is better; `"metric"`: the task's
            metric, the validation AUC for a binary task (higher is better; an epoch
            whose AUC is undefined, one class in the slice, is never better) or the
            validation RMSE for regression (lower is better).
        average_epochs: int ≥ 1, the final weights are the element-wise mean of the
            best epoch's and of the `average_epochs − 1` epochs' just before it (fewer
            when training has not run that many). Defaults to 1 (the best epoch's own).

    Raises:
        ConfigError: listing every field that breaks its rule.

    Example:
        >>> DataConfig(split="u1", patience=3).validation_fraction
        0.1
    """

    split: str | None = None
    seed: int = 0
    data_dir: str | None = None
    validation_fraction: float = 0.1
    patience: int = 2
    max_train_rows: int | None = None
    validation: str = "last"
    stream: bool = False
    shuffle_buffer: int = 262_144
    validation_max_rows: int = 100_000
    monitor: str = "loss"
    average_epochs: int = 1

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(DataConfig)
        problems = []
        for f in fields(self):
            value, problem = check_field(f"data.{f.name}", getattr(self, f.name), hints[f.name], rules=RULES)
            if problem:
                problems.append(problem)
            else:
                object.__setattr__(self, f.name, value)
        if problems:
            raise ConfigError(problems)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# The `data.*` keys only a dataset run (`--dataset`, or `dcnrank train` without `--data`) reads;
# a run on one's own table refuses them when set.
DATASET_ONLY_KEYS = ("split", "data_dir")


def refuse_changed(data: DataConfig, names: tuple[str, ...], why: str) -> None:
    """Raise if any of the `data.*` keys `names` is set away from its default.

    Raises:
        ConfigError: listing each such key as ``data.NAME: WHY. Received: VALUE``.

    Example:
        >>> refuse_changed(DataConfig(), DATASET_ONLY_KEYS, "applies to --dataset runs")
    """
    defaults = DataConfig()
    problems = [
        f"data.{name}: {why}. Received: {getattr(data, name)!r}"
        for name in names
        if getattr(data, name) != getattr(defaults, name)
    ]
    if problems:
        raise ConfigError(problems)
