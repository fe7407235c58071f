"""Results of an experiment: per model, the metric of every trial, and its JSON form."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from dcnrank.atomic import replace_file


@dataclass
class ModelResult:
    """One model's trials: test RMSE and MAE per trial, parameters, training time."""

    rmse: list[float] = field(default_factory=list)
    mae: list[float] = field(default_factory=list)
    params: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rmse_mean(self) -> float:
        return _mean(self.rmse)

    @property
    def rmse_std(self) -> float:
        # np.std, as the seed reports it: the population standard deviation.
        return _std(self.rmse)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rmse": self.rmse,
            "rmse_mean": self.rmse_mean,
            "rmse_std": self.rmse_std,
            "mae": self.mae,
            "mae_mean": _mean(self.mae),
            "params": self.params,
            "seconds": self.seconds,
            **self.extra,
        }


@dataclass
class ExperimentResult:
    """A whole experiment: its settings, wall time and each model's result.

    `trained` keeps the first trial's model of each kind for explanations; it
    is not part of the JSON.
    """

    experiment: str
    config: dict[str, Any]
    models: dict[str, ModelResult]
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    trained: dict[str, nn.Module] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            **self.info,
            "config": self.config,
            "seconds": self.seconds,
            "models": {name: m.to_dict() for name, m in self.models.items()},
        }

    def write_json(self, path: str | Path) -> Path:
        """Write `to_dict()` to `path` atomically (a temporary file, then a rename)."""
        return write_json_atomic(path, self.to_dict())


def write_json_atomic(path: str | Path, payload: Any) -> Path:
    """Write JSON so that a crash leaves either the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, (json.dumps(payload, indent=2) + "\n").encode())
    return path


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _std(values: list[float]) -> float:
    if not values:
        return math.nan
    mean = _mean(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
