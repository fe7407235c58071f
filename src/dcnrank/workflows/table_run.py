"""`train_table`: one DCN trained on a person's own table (CSV, Parquet, DataFrame) as a
feature spec describes it, with early stopping, saved as a table bundle."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from dcnrank.bundle.save import save_table
from dcnrank.bundle.target import check_bundle_target
from dcnrank.config.data_config import MOVIELENS_ONLY_KEYS, refuse_changed
from dcnrank.config.errors import ConfigError
from dcnrank.config.run_config import TrainRunConfig
from dcnrank.data.feature_spec import FeatureSpec
from dcnrank.data.streamed_table import StreamedTable
from dcnrank.data.table_encoder import EncodedRows, TableEncoder, fit_and_encode
from dcnrank.data.table_readers import as_arrow_table, read_table, source_name
from dcnrank.explain.model_interactions import INTERACTIONS_FILE, model_interactions
from dcnrank.models.dcn import count_parameters
from dcnrank.models.size import MemoryCheck
from dcnrank.models.table_inputs import build_table_dcn
from dcnrank.training.checkpoint import resume_or_start
from dcnrank.training.distributed import World, distributed_session, training_device, world_from_env
from dcnrank.training.trainer import BatchStream
from dcnrank.workflows.early_stopping import fit_with_early_stopping
from dcnrank.workflows.table_task import TaskTrainer, task_metrics

__all__ = ["TABLE_DATA_KEYS", "TableRunResult", "train_table"]

log = logging.getLogger(__name__)

# The `data.*` keys a table run reads; the others (split, vocab, data_dir) are MovieLens'.
TABLE_DATA_KEYS = (
    "seed", "validation_fraction", "patience", "max_train_rows", "stream", "shuffle_buffer", "validation_max_rows",
)  # fmt: skip


@dataclass(frozen=True)
class TableRunResult:
    """What `train_table` produced.

    Args:
        bundle_path: the saved table bundle.
        config: the resolved configuration (also in the bundle's `config.json`).
        metrics: what the bundle's `metrics.json` holds: `validation` (the best
            epoch's metrics on the held-out rows, group AUC included), per-epoch
            `history`, `data` facts, `parameters` and `seconds`.
    """

    bundle_path: Path
    config: TrainRunConfig
    metrics: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """A short machine-readable summary (the CLI's `--json` output)."""
        validation = self.metrics["validation"]
        return {
            "bundle": str(self.bundle_path),
            "task": self.metrics["data"]["task"],
            "best_epoch": validation["best_epoch"],
            "epochs_run": len(self.metrics["history"]),
            "stopped_early": validation["stopped_early"],
            "validation": validation,
            "parameters": self.metrics["parameters"],
            "seconds": self.metrics["seconds"],
        }


def check_table_config(config: TrainRunConfig) -> None:
    """Refuse `data.*` settings that only MovieLens runs read, rather than ignore them.

    Raises:
        ConfigError: listing each such key set to anything but its default.
    """
    reads = ", ".join("data." + k for k in TABLE_DATA_KEYS)
    why = f"applies to MovieLens runs, not to --data tables; table runs read {reads}"
    refuse_changed(config.data, MOVIELENS_ONLY_KEYS, why)


def train_table(
    config: TrainRunConfig,
    spec: FeatureSpec,
    data: Any,
    out: str | Path,
    progress: bool | None = False,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    device: str = "cpu",
) -> TableRunResult:
    """Train one model on a table as `spec` describes it, keep its best epoch, save a table bundle.

    With `data.stream` the file is never read whole (`dcnrank.data.streamed_table`): one
    pass checks it, holds out up to `data.validation_max_rows` rows (a seeded random
    `data.validation_fraction`) and fits the encoder on the other rows; each epoch then
    streams the training rows through a shuffle buffer of `data.shuffle_buffer` rows.

    Under `torchrun` (several processes) the ranks train one model with
    DistributedDataParallel; with `data.stream` each reads its own share of the file's
    row groups; only rank 0 writes the bundle and checkpoints.

    Before anything else, `out` is checked (`check_bundle_target`: nothing there, an
    empty folder or a dcnrank bundle, else refused) and so is `checkpoint_dir`
    (`resume_or_start`: with `resume` but no checkpoint there yet, training starts
    from the beginning).

    Steps without `data.stream`: read the table (a path to CSV/Parquet, or a DataFrame /
    Arrow table); keep its first `data.max_train_rows` rows if set; hold out a seeded random
    `data.validation_fraction` of the rows (seed `data.seed`); fit vocabularies and
    numeric statistics on the other rows only and encode every row (a bad cell or
    label is an error naming the row in the file); build `build_table_dcn` with weights
    seeded by `train.seed`; train with the task's loss in the held-out order of the
    remaining rows (a seeded shuffle), evaluating every epoch and stopping after
    `data.patience` epochs without a lower validation loss; keep the best epoch; save
    the bundle with the resolved config and the metrics.

    Args:
        config: the run configuration (`model`, `train`, and the `data` keys in
            :data:`TABLE_DATA_KEYS`).
        spec: the feature spec.
        data: a CSV/Parquet path, pandas DataFrame or pyarrow Table.
        out: the bundle folder (replaced atomically if it holds a bundle; anything
            else is refused before training).
        progress: show progress bars (`None`: only on a terminal).
        checkpoint_dir: where to write training checkpoints. Defaults to `None`.
        resume: continue from the checkpoint in `checkpoint_dir` (none there yet:
            start from the beginning). Defaults to `False`.
        device: ``"cpu"`` (default) or ``"cuda"`` (under torchrun, GPU `LOCAL_RANK`
            of each machine, and NCCL between ranks).

    Returns:
        The bundle path, the config and the metrics.

    Raises:
        ConfigError: if a MovieLens-only `data.*` key is set.
        TableDataError: if the table does not fit the spec (named column and rows).
        ValueError: if the table is too small to hold out a validation row.
        BundleError: before training, if `out` is a file or a folder that is not a
            dcnrank bundle, or cannot be created.
        CheckpointError: if resuming from a corrupt or foreign checkpoint, or
            `checkpoint_dir` is a file.

    Example:
        >>> import tempfile
        >>> from dcnrank.config import load_config
        >>> from dcnrank.data.feature_spec import FeatureSpec, NumericColumn
        >>> spec = FeatureSpec((NumericColumn("x"),), label="y", task="regression")
        >>> table = {"x": [float(i) for i in range(40)], "y": [2.0 * i for i in range(40)]}
        >>> config = load_config(overrides=["model.structure=cross_only", "train.epochs=2"])
        >>> result = train_table(config, spec, table, tempfile.mkdtemp() + "/b")
        >>> sorted(result.metrics["validation"])[:4]
        ['best_epoch', 'loss', 'mae', 'rmse']
    """
    began = time.perf_counter()
    check_table_config(config)
    if world_from_env().is_main:  # the one writer checks where it will write, before any rank reads data
        check_bundle_target(out)
    resume = resume_or_start(checkpoint_dir, resume)
    with distributed_session(device) as world:
        return _train_table(config, spec, data, out, progress, checkpoint_dir, resume, world, began, device)


def _train_table(
    config: TrainRunConfig,
    spec: FeatureSpec,
    data: Any,
    out: str | Path,
    progress: bool | None,
    checkpoint_dir: str | Path | None,
    resume: bool,
    world: World,
    began: float,
    device: str,
) -> TableRunResult:
    settings = config.data
    source = source_name(data)
    if settings.stream:
        fit_x, fit_labels, val, encoder, facts = _streamed(config, spec, data, progress, world)
    else:
        fit_x, fit_labels, val, encoder, facts = _in_memory(config, spec, data)
    where = training_device(device, world)
    if not isinstance(fit_x, BatchStream):
        fit_x, fit_labels = fit_x.to(where), cast(torch.Tensor, fit_labels).to(where)
    val_x, val_labels = cast(torch.Tensor, val.features).to(where), _labels(val).to(where)
    log.info("training on %d rows, validating on %d (%s task)", facts["n_fit"], len(val), spec.task)
    torch.manual_seed(config.train.seed)
    model = build_table_dcn(config.model, spec, encoder.table_sizes, memory_check=MemoryCheck(device=where)).to(where)
    trainer = TaskTrainer(spec.task, config.train, desc="train")
    stopping = fit_with_early_stopping(
        trainer,
        model,
        fit_x,
        fit_labels,
        (val_x, val_labels),
        patience=settings.patience,
        progress=progress if world.is_main else False,
        monitor="val_loss",
        checkpoint_dir=checkpoint_dir,
        resume=resume,
    )
    outputs = trainer.predict(model, val_x)
    validation = task_metrics(spec.task, val_labels, outputs, val.groups)
    metrics = {
        "validation": {
            "best_epoch": stopping.best_epoch,
            "stopped_early": stopping.stopped_early,
            "rows": len(val),
            **validation,
        },
        "history": stopping.history.epochs,
        "data": {"source": source, "task": spec.task, **facts, "table_sizes": encoder.table_sizes},
        "parameters": count_parameters(model),
        "seconds": time.perf_counter() - began,
    }
    model = model.cpu()
    path = Path(out)
    if world.is_main:  # one writer
        path = save_table(model, out, model_config=config.model, encoder=encoder, train_config=config, metrics=metrics)
        if model.cross is not None:  # beside the bundle's files, which load ignores
            log.info("wrote %s", model_interactions(model).plot(path / INTERACTIONS_FILE))
    return TableRunResult(path, config, metrics)


Prepared = tuple["torch.Tensor | BatchStream", "torch.Tensor | None", EncodedRows, TableEncoder, dict[str, Any]]


def _in_memory(config: TrainRunConfig, spec: FeatureSpec, data: Any) -> Prepared:
    """Read the whole table, hold out a seeded random share, fit and encode."""
    settings = config.data
    source = source_name(data)
    table = read_table(data) if isinstance(data, str | Path) else as_arrow_table(data)
    if settings.max_train_rows is not None and table.num_rows > settings.max_train_rows:
        table = table.slice(0, settings.max_train_rows)
    n = table.num_rows
    n_val = max(1, int(round(n * settings.validation_fraction)))
    if n - n_val < 1:
        raise ValueError(
            f"{source}: {n} rows are too few to hold out data.validation_fraction="
            f"{settings.validation_fraction} for validation and still train"
        )
    order = np.random.default_rng(settings.seed).permutation(n)
    val_rows, fit_rows = np.sort(order[:n_val]), order[n_val:]
    encoder, encoded = fit_and_encode(spec, table, fit_rows, source=source)
    fit = encoded.take(torch.from_numpy(fit_rows))
    val = encoded.take(torch.from_numpy(val_rows))
    label_mean = float(_labels(encoded).double().mean())
    facts = {"rows": n, "n_fit": len(fit), "n_validation": len(val), "label_mean": label_mean}
    # `Trainer` takes a TableBatch wherever it takes an input tensor (len, slices, gathers).
    return cast(torch.Tensor, fit.features), _labels(fit), val, encoder, facts


def _streamed(config: TrainRunConfig, spec: FeatureSpec, data: Any, progress: bool | None, world: World) -> Prepared:
    """One pass over the file (encoder, validation rows), then this rank's training stream."""
    settings = config.data
    if not isinstance(data, str | Path):
        raise ValueError(
            f"data.stream=true reads a CSV or Parquet file chunk by chunk; pass its path. Received: {source_name(data)}"
        )
    if settings.max_train_rows is not None:
        raise ConfigError(["data.max_train_rows: does not go with data.stream=true (the whole file streams)"])
    table = StreamedTable.scan(
        spec,
        data,
        validation_fraction=settings.validation_fraction,
        validation_max_rows=settings.validation_max_rows,
        seed=settings.seed,
        progress=progress if world.is_main else False,
    )
    stream = table.training(
        config.train.batch_size,
        shuffle=config.train.shuffle,
        shuffle_buffer=settings.shuffle_buffer,
        seed=config.train.seed,
        world=world,
    )
    facts = {
        "rows": table.rows,
        "n_fit": table.train_rows,
        "n_validation": len(table.validation),
        "label_mean": table.label_mean,
        "streamed": True,
        "ranks": world.size,
    }
    return stream, None, table.validation, table.encoder, facts


def _labels(rows: EncodedRows) -> torch.Tensor:
    """The labels `fit_and_encode` always returns (it requires the label column)."""
    if rows.labels is None:  # pragma: no cover - fit_and_encode reads the label column or raises
        raise ValueError("the encoded rows have no labels")
    return rows.labels
