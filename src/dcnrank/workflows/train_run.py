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
from dcnrank.bundle.target import check_bundle_target
from dcnrank.config.data_config import TABLE_ONLY_KEYS, refuse_changed
from dcnrank.config.run_config import TrainRunConfig
from dcnrank.data import load_movielens, locate_movielens
from dcnrank.data.item_side import item_side_table
from dcnrank.data.ratings import Ratings
from dcnrank.data.validation_split import validation_split
from dcnrank.experiments.movielens import PreparedMovieLens, prepare_movielens
from dcnrank.models.dcn import DCN, build_dcn, count_parameters
from dcnrank.models.size import MemoryCheck
from dcnrank.training.checkpoint import resume_or_start
from dcnrank.training.distributed import world_from_env
from dcnrank.training.trainer import Trainer
from dcnrank.workflows.early_stopping import EarlyStoppingResult, fit_with_early_stopping
from dcnrank.workflows.evaluation import evaluate_split

__all__ = ["FittedMovieLens", "TrainRunResult", "fit_movielens", "train_run"]

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


@dataclass(frozen=True)
class FittedMovieLens:
    """What `fit_movielens` trained: the model (best epoch), the early-stopping record,
    the prepared split, and how many rows fitted and validated it."""

    model: DCN
    stopping: EarlyStoppingResult
    prepared: PreparedMovieLens
    n_fit: int
    n_validation: int


def fit_movielens(
    config: TrainRunConfig,
    ratings: Ratings,
    folder: str | Path | None,
    progress: bool | None = False,
    device: str | torch.device = "cpu",
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
) -> FittedMovieLens:
    """Train one model on the training rows of `config.data.split`; never touches its test rows' labels.

    Split and fit vocabularies (`prepare_movielens`); keep the first `max_train_rows`
    training rows if set; hold out `validation_fraction` of them (the last rows, or a
    seeded random share: `data.validation`); build the DCN with weights seeded by
    `config.train.seed` (its `μ` is the fit rows' mean rating, its item side features
    are read from the training rows, its user and item histories from the fit rows);
    train on `device` with early stopping on the
    validation RMSE and keep the best epoch.

    Args:
        config: the run's configuration.
        ratings: the parsed MovieLens table.
        folder: the MovieLens folder (GroupLens' splits read their files there).
        progress: show progress bars (`None`: only on a terminal).
        device: where to train. Defaults to the CPU.
        checkpoint_dir: where to write training checkpoints (`Trainer.fit`). Defaults to `None`.
        resume: continue from the checkpoint in `checkpoint_dir`; with none there yet,
            start from the beginning (`resume_or_start`). Defaults to `False`.

    Returns:
        The trained model (on `device`), the early-stopping result, the prepared data
        and the fit and validation row counts.

    Raises:
        ValueError: if the training split is too small to hold out a validation set.
        CheckpointError: if resuming from a corrupt or foreign checkpoint, or
            `checkpoint_dir` is a file.
    """
    resume = resume_or_start(checkpoint_dir, resume)
    data = config.data
    prepared = prepare_movielens(ratings, data.split, data.vocab, data.seed, folder)
    train_table = prepared.train
    if data.max_train_rows is not None:
        train_table = train_table.take(torch.arange(min(data.max_train_rows, len(train_table))))
    fit_index, val_index = validation_split(
        len(train_table), data.validation_fraction, data.validation, data.seed
    )
    fit_rows, val_rows = train_table.take(fit_index).to(device), train_table.take(val_index).to(device)
    log.info("training on %d rows, validating on %d, split %s", len(fit_rows), len(val_rows), data.split)

    torch.manual_seed(config.train.seed)
    model = build_dcn(
        config.model,
        vocabulary_sizes=train_table.vocabulary_sizes,
        label_mean=float(fit_rows.labels.double().mean()),
        memory_check=MemoryCheck(device=device),
    )
    if model.item_features is not None:
        model.item_features.set_items(*item_side_table(ratings, prepared.train_rows, prepared.vocabularies))
    model.set_histories(fit_rows.features)  # which items each user rated in the fit rows; no-op without histories
    model = model.to(device)
    trainer = Trainer(config.train, desc="train")
    stopping = fit_with_early_stopping(
        trainer,
        model,
        fit_rows.features,
        fit_rows.labels,
        (val_rows.features, val_rows.labels),
        patience=data.patience,
        progress=progress,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
    )
    return FittedMovieLens(model, stopping, prepared, len(fit_rows), len(val_rows))


def check_movielens_config(config: TrainRunConfig) -> None:
    """Refuse what a MovieLens run would ignore: table-only `data.*` keys, and several processes.

    Raises:
        ConfigError: listing each table-only key set to anything but its default.
        ValueError: if torchrun started several processes (`WORLD_SIZE` > 1).
    """
    refuse_changed(config.data, TABLE_ONLY_KEYS, "applies to --data tables, not to MovieLens runs")
    if world_from_env().size > 1:
        raise ValueError(
            "MovieLens 100K trains in one process; several processes (torchrun) are for --data tables "
            "(docs/scale.md)"
        )


def train_run(
    config: TrainRunConfig,
    out: str | Path,
    progress: bool | None = False,
    device: str | torch.device = "cpu",
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
) -> TrainRunResult:
    """Train one model as `config` says, pick its best epoch, test it, save a bundle.

    Steps: check that `out` can take a bundle (`check_bundle_target`: nothing there, an
    empty folder or a dcnrank bundle) before anything else; find and parse MovieLens
    (`config.data.data_dir`, else `$DCNRANK_DATA`, the cache or a download); train on
    the split's training rows with early stopping (`fit_movielens`); evaluate the best
    epoch on the test rows (`evaluate_split`); save the bundle with the resolved config
    and the metrics.

    Args:
        config: the run's configuration.
        out: the bundle folder (replaced atomically if it holds a bundle; anything
            else is refused before training).
        progress: show progress bars (`None`: only on a terminal).
        device: where to train (`fit_movielens`). Defaults to the CPU.
        checkpoint_dir: where to write training checkpoints; a killed run resumes from
            them with `resume=True`. Defaults to `None`.
        resume: continue from the checkpoint in `checkpoint_dir` (same config and
            data), best epoch and patience count included; with no checkpoint there
            yet, start from the beginning. Defaults to `False`.

    Returns:
        The bundle path, the config and the metrics.

    Raises:
        MovieLensNotFoundError: if the data cannot be found or fetched.
        ValueError: if the training split is too small to hold out a validation set.
        BundleError: before training, if `out` is a file or a folder that is not a
            dcnrank bundle, or cannot be created.
        CheckpointError: if resuming from a corrupt or foreign checkpoint, or
            `checkpoint_dir` is a file.
        ConfigError: if a key only table runs read (`data.stream`, ...) is set.
        ValueError: under torchrun with several processes (MovieLens trains in one).
    """
    began = time.perf_counter()
    check_movielens_config(config)
    check_bundle_target(out)  # before the data is read and the model trained
    resume = resume_or_start(checkpoint_dir, resume)
    data = config.data
    folder = locate_movielens(data.data_dir, progress=bool(progress))
    ratings = load_movielens(folder)
    fitted = fit_movielens(
        config, ratings, folder, progress=progress, device=device, checkpoint_dir=checkpoint_dir, resume=resume
    )
    model, stopping, prepared = fitted.model.cpu(), fitted.stopping, fitted.prepared
    train_table, info, vocabularies = prepared.train, prepared.info, prepared.vocabularies
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
            "rows": fitted.n_validation,
            **{k: v for k, v in best.items() if k.startswith("val_")},
        },
        "history": stopping.history.epochs,
        "data": {**info, "n_fit": fitted.n_fit, "n_validation": fitted.n_validation},
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
