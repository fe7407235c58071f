"""`train_run`: one DCN trained on MovieLens from a `TrainRunConfig`, saved as a bundle."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dcnrank.bundle.bundle import Bundle, BundleConfig
from dcnrank.bundle.save import save
from dcnrank.config.run_config import TrainRunConfig
from dcnrank.data import load_movielens, locate_movielens
from dcnrank.experiments.movielens import prepare_movielens
from dcnrank.models.dcn import build_dcn, count_parameters
from dcnrank.training.trainer import Trainer
from dcnrank.workflows.early_stopping import fit_with_early_stopping
from dcnrank.workflows.evaluation import evaluate_split

__all__ = ["TrainRunResult", "train_run"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainRunResult:
    """What `train_run` produced.

    Args:
        bundle_path: the saved bundle folder.
        config: the resolved configuration (also in the bundle's `config.json`).
        metrics: everything written to the bundle's `metrics.json`: `test` metrics,
            `validation` (best epoch and its metrics), per-epoch `history`, `data` facts,
            `parameters` and `seconds`.
    """

    bundle_path: Path
    config: TrainRunConfig
    metrics: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """A short machine-readable summary (the CLI's `--json` output)."""
        validation = self.metrics["validation"]
        return {
            "bundle": str(self.bundle_path),
            "best_epoch": validation["best_epoch"],
            "epochs_run": len(self.metrics["history"]),
            "stopped_early": validation["stopped_early"],
            "val_rmse": validation["val_rmse"],
            "test": self.metrics["test"],
            "parameters": self.metrics["parameters"],
            "seconds": self.metrics["seconds"],
        }


def train_run(config: TrainRunConfig, out: str | Path, progress: bool | None = False) -> TrainRunResult:
    """Train one model as `config` says, pick its best epoch, test it, save a bundle.

    Steps: find and parse MovieLens (`config.data.data_dir`, else `$DCNRANK_DATA`, the
    cache or a download); split it and fit vocabularies (`prepare_movielens`); keep
    the first `max_train_rows` training rows if set; hold out the last
    `validation_fraction` of them; build the DCN with weights seeded by
    `config.train.seed`; train with early stopping on validation RMSE; evaluate the
    best epoch on the test rows (`evaluate_split`); save the bundle with the resolved
    config and the metrics.

    Args:
        config: the run's configuration.
        out: the bundle folder (replaced atomically if it holds a bundle).
        progress: show progress bars (`None`: only on a terminal).

    Returns:
        The bundle path, the config and the metrics.

    Raises:
        MovieLensNotFoundError: if the data cannot be found or fetched.
        ValueError: if the training split is too small to hold out a validation set.
        BundleError: if `out` exists and is not a bundle.
    """
    began = time.perf_counter()
    data = config.data
    folder = locate_movielens(data.data_dir, progress=bool(progress))
    ratings = load_movielens(folder)
    prepared = prepare_movielens(ratings, data.split, data.vocab, data.seed, folder)
    train_table, info, vocabularies = prepared.train, prepared.info, prepared.vocabularies
    if data.max_train_rows is not None:
        train_table = train_table.take(torch.arange(min(data.max_train_rows, len(train_table))))
    n = len(train_table)
    n_val = max(1, int(round(n * data.validation_fraction)))
    if n - n_val < 1:
        raise ValueError(
            f"the training split has {n} rows: too few to hold out "
            f"data.validation_fraction={data.validation_fraction} for validation"
        )
    fit_rows = train_table.take(torch.arange(n - n_val))
    val_rows = train_table.take(torch.arange(n - n_val, n))
    log.info("training on %d rows, validating on %d, split %s", len(fit_rows), len(val_rows), data.split)

    torch.manual_seed(config.train.seed)
    model = build_dcn(config.model, vocabulary_sizes=train_table.vocabulary_sizes)
    trainer = Trainer(config.train, desc="train")
    stopping = fit_with_early_stopping(
        trainer,
        model,
        fit_rows.features,
        fit_rows.labels,
        (val_rows.features, val_rows.labels),
        patience=data.patience,
        progress=progress,
    )
    parameters = count_parameters(model)  # before Bundle() freezes the parameters
    bundle_config = BundleConfig(
        model=config.model,
        feature_names=train_table.feature_names,
        vocabulary_sizes=train_table.vocabulary_sizes,
        train=config.to_dict(),
    )
    test = evaluate_split(Bundle(model, bundle_config, vocabularies), ratings, data.split, data.seed, folder)
    best = stopping.history.epochs[stopping.best_epoch - 1]
    metrics = {
        "test": test,
        "validation": {
            "best_epoch": stopping.best_epoch,
            "stopped_early": stopping.stopped_early,
            "rows": len(val_rows),
            **{k: v for k, v in best.items() if k.startswith("val_")},
        },
        "history": stopping.history.epochs,
        "data": {**info, "n_fit": len(fit_rows), "n_validation": len(val_rows)},
        "parameters": parameters,
        "seconds": time.perf_counter() - began,
    }
    path = save(
        model,
        out,
        model_config=config.model,
        vocabularies=vocabularies,
        train_config=config,
        metrics=_plain(metrics),
    )
    return TrainRunResult(path, config, metrics)


def _plain(value: Any) -> Any:
    """Numpy scalars and tuples inside `value` as JSON-ready Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
