"""`train_table`: one DCN trained on a table (CSV, Parquet, DataFrame, a dataset's training rows)
as a feature spec describes it, with early stopping, saved as a table bundle."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import torch

from dcnrank.bundle.catalog import Catalog
from dcnrank.bundle.save import save
from dcnrank.bundle.target import check_bundle_target
from dcnrank.config.data_config import DATASET_ONLY_KEYS, refuse_changed
from dcnrank.config.errors import ConfigError
from dcnrank.config.model_config import DCNConfig
from dcnrank.config.run_config import TrainRunConfig
from dcnrank.data.encoding.interactions import Interactions
from dcnrank.data.encoding.table_batch import TableBatch
from dcnrank.data.encoding.table_encoder import EncodedRows, TableEncoder, fit_and_encode
from dcnrank.data.holdout import validation_split
from dcnrank.data.sources.table_readers import source_name
from dcnrank.data.sources.table_slices import TableSlices
from dcnrank.data.spec.feature_spec import FeatureSpec
from dcnrank.data.streaming.streamed_table import StreamedTable
from dcnrank.explain.model_interactions import INTERACTIONS_FILE, model_interactions
from dcnrank.free_memory import release_free_memory
from dcnrank.models.bias_terms import label_offset
from dcnrank.models.dcn import DCN, count_parameters
from dcnrank.models.size import MemoryCheck
from dcnrank.models.table_inputs import build_table_dcn, network_config, table_levers
from dcnrank.training.checkpoint import resume_or_start
from dcnrank.training.distributed import distributed_session, training_device, world_from_env
from dcnrank.training.early_stopping import fit_with_early_stopping
from dcnrank.training.list_batches import ListBatches, group_lists
from dcnrank.training.tasks import TaskTrainer, task_metrics, task_monitor
from dcnrank.training.trainer import BatchStream
from dcnrank.world import World

__all__ = ["TableRunResult", "check_table_config", "check_task_config", "train_table"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TableRunResult:
    """What `train_table` produced.

    Args:
        bundle_path: the saved table bundle.
        config: the resolved configuration (also in the bundle's `config.json`).
        metrics: what the bundle's `metrics.json` holds: `validation` (the best
            epoch's metrics on the held-out rows, group AUC included), per-epoch
            `history`, `data` facts, `parameters` and `seconds`.
        interactions: the fit rows' distinct user → item pairs (`Interactions`, the
            histories' source), or None when the spec lacks the `user` or `item` role
            or the rows were streamed.
    """

    bundle_path: Path
    config: TrainRunConfig
    metrics: dict[str, Any]
    interactions: Interactions | None = None

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


def check_table_config(config: TrainRunConfig, dataset: Mapping[str, Any] | None = None) -> None:
    """Refuse the dataset-only `data.*` keys (`data.split`, `data.data_dir`) on a run that reads
    no dataset, rather than ignore them, and `data.validation = "last"` with `data.stream` (a
    stream has no known last rows).

    Args:
        config: the run's configuration.
        dataset: the dataset the rows come from (`train_table`'s), or None for one's own table.

    Raises:
        ConfigError: listing each dataset-only key set without a dataset, or naming
            `data.validation` when it is "last" and `data.stream` is true.

    Example:
        >>> from dcnrank.config import load_config
        >>> try:
        ...     check_table_config(load_config(overrides=["data.split=u2"]))
        ... except ConfigError as error:
        ...     print(error.errors[0][:61])
        data.split: applies to --dataset runs (the dataset's split an
        >>> check_table_config(load_config(overrides=["data.split=u2"]), {"dataset": "movielens-100k"})
    """
    if dataset is None:
        why = "applies to --dataset runs (the dataset's split and folder), not to your own table (--data)"
        refuse_changed(config.data, DATASET_ONLY_KEYS, why)
    if config.data.stream and config.data.validation == "last":
        raise ConfigError(
            [
                'data.validation: "last" does not go with data.stream=true (a stream has no known last rows); '
                "set data.validation=\"random\". Received: 'last'"
            ]
        )


def check_task_config(config: TrainRunConfig, spec: FeatureSpec) -> None:
    """Refuse settings the spec's task cannot use: a ranking loss (`train.loss`) without
    task = "ranking", and a ranking run with `data.stream` (its lists gather a group's rows
    from anywhere in the file).

    Raises:
        ConfigError: naming the key.

    Example:
        >>> from dcnrank.config import load_config
        >>> from dcnrank.data.spec.feature_spec import FeatureSpec, NumericColumn
        >>> spec = FeatureSpec((NumericColumn("x"),), label="y", task="binary")
        >>> try:
        ...     check_task_config(load_config(overrides=["train.loss=list_mle"]), spec)
        ... except ConfigError as error:
        ...     print(error.errors[0][:58])
        train.loss: 'list_mle' orders the rows of a group; it appl
    """
    loss = config.train.loss
    if spec.task != "ranking" and loss != "auto":
        raise ConfigError(
            [
                f"train.loss: {loss!r} orders the rows of a group; it applies to task = \"ranking\" (set task and "
                f"group in the spec), not to task = {spec.task!r}, whose loss is its own (train.loss = \"auto\")"
            ]
        )
    if spec.task != "ranking" and config.train.pointwise_weight:
        raise ConfigError(
            [
                f"train.pointwise_weight: adds a pointwise term to a ranking loss; it applies to task = \"ranking\", "
                f"not to task = {spec.task!r} (set it to 0)"
            ]
        )
    if spec.task == "ranking" and config.data.stream:
        raise ConfigError(
            [
                'data.stream: does not go with task = "ranking" yet (a list gathers one group\'s rows from '
                "anywhere in the file); read the file whole (data.stream=false)"
            ]
        )


def train_table(
    config: TrainRunConfig,
    spec: FeatureSpec,
    data: Any,
    out: str | Path,
    progress: bool | None = False,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    device: str = "cpu",
    dataset: Mapping[str, Any] | None = None,
) -> TableRunResult:
    """Train one model on a table as `spec` describes it, keep its best epoch, save a table bundle.

    With `data.stream` the file is never read whole (`dcnrank.data.streaming.streamed_table`): one
    pass checks it, holds out up to `data.validation_max_rows` rows (a seeded random
    `data.validation_fraction`; `data.validation` must be "random") and fits the encoder
    on the other rows; each epoch then streams the training rows through a shuffle
    buffer of `data.shuffle_buffer` rows.

    Under `torchrun` (several processes) the ranks train one model with
    DistributedDataParallel; with `data.stream` each reads its own share of the file's
    row groups; only rank 0 writes the bundle and checkpoints.

    Before anything else, `out` is checked (`check_bundle_target`: nothing there, an
    empty folder or a dcnrank bundle, else refused) and so is `checkpoint_dir`
    (`resume_or_start`: with `resume` but no checkpoint there yet, training starts
    from the beginning).

    Steps without `data.stream`: read the table (a path to CSV/Parquet, or a DataFrame /
    Arrow table); keep its first `data.max_train_rows` rows if set; hold out
    `data.validation_fraction` of the rows by `data.validation` (`validation_split`: the
    last rows, or a seeded random share, seed `data.seed`, the very rows a streamed run of
    the same file holds out while under `data.validation_max_rows`); fit vocabularies and
    numeric statistics on the other rows only and encode every row (a bad cell or
    label is an error naming the row in the file); build `build_table_dcn` with weights
    seeded by `train.seed`; set its levers from the fit rows only (the label offset and
    range, `metrics["data"]`'s `fit_label_mean`, `label_min`, `label_max`; the distinct
    user → item pairs when the spec names both roles, their count in
    `metrics["data"]["interactions"]`); train with the task's loss on the remaining rows in a
    seeded random order (seed `data.seed`), evaluating every epoch and stopping after
    `data.patience` epochs without a better `data.monitor` (the validation loss, or the
    task's AUC or RMSE); keep the best epoch (averaged with the `data.average_epochs − 1`
    before it); save
    the bundle with the resolved config, the metrics and, when the spec names both
    roles, the fit rows' catalogue (`Catalog.build`: users, items and their pairs).

    Args:
        config: the run configuration (`model`, `train`, and `data`; `data.split` and
            `data.data_dir` only with `dataset`, whose split the caller cut).
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
        dataset: JSON-ready facts about the dataset `data` was cut from (e.g.
            ``{"dataset": "movielens-100k", "split": "u1"}``), recorded in
            `metrics["data"]` (`dcnrank evaluate` reads them to find the test rows), or
            None for one's own table. Defaults to None.

    Returns:
        The bundle path, the config and the metrics.

    Raises:
        ConfigError: if `data.split` or `data.data_dir` is set without `dataset`, `data.validation` is
            "last" with `data.stream`, or a history is asked for with `data.stream` on a
            spec with user and item roles.
        TableDataError: if the table does not fit the spec (named column and rows).
        ValueError: if the hold-out leaves no validation row or no row to train on.
        BundleError: before training, if `out` is a file or a folder that is not a
            dcnrank bundle, or cannot be created.
        CheckpointError: if resuming from a corrupt or foreign checkpoint, or
            `checkpoint_dir` is a file.

    Example:
        >>> import tempfile
        >>> from dcnrank.config import load_config
        >>> from dcnrank.data.spec.feature_spec import FeatureSpec, NumericColumn
        >>> spec = FeatureSpec((NumericColumn("x"),), label="y", task="regression")
        >>> table = {"x": [float(i) for i in range(40)], "y": [2.0 * i for i in range(40)]}
        >>> config = load_config(overrides=["model.structure=cross_only", "train.epochs=2"])
        >>> result = train_table(config, spec, table, tempfile.mkdtemp() + "/b")
        >>> sorted(result.metrics["validation"])[:4]
        ['best_epoch', 'loss', 'mae', 'rmse']
    """
    began = time.perf_counter()
    check_table_config(config, dataset)
    check_task_config(config, spec)
    if world_from_env().is_main:  # the one writer checks where it will write, before any rank reads data
        check_bundle_target(out)
    resume = resume_or_start(checkpoint_dir, resume)
    with distributed_session(device) as world:
        return _train_table(
            config, spec, data, out, progress, checkpoint_dir, resume, world, began, device, dict(dataset or {})
        )


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
    dataset: dict[str, Any],
) -> TableRunResult:
    settings = config.data
    source = source_name(data)
    if settings.stream:
        fit, val, encoder, facts, fit_table = _streamed(config, spec, data, progress, world)
    else:
        fit, val, encoder, facts, fit_table = _in_memory(config, spec, data)
        release_free_memory(arrow=True)  # the table's and the parsing's memory, back to the system
    where = training_device(device, world)
    fit_x: Any = fit
    fit_labels = None
    if isinstance(fit, EncodedRows):
        fit_x, fit_labels = fit.features.to(where), _labels(fit).to(where)
    val_x, val_labels = cast(torch.Tensor, val.features).to(where), _labels(val).to(where)
    log.info("training on %d rows, validating on %d (%s task)", facts["n_fit"], len(val), spec.task)
    torch.manual_seed(config.train.seed)
    model = build_table_dcn(config.model, spec, encoder.table_sizes, memory_check=MemoryCheck(device=where)).to(where)
    if world.is_main:  # what of the configuration this table leaves out, said once (loading a bundle is quiet)
        full_rank = network_config(config.model, model.in_features)[1]
        for notice in (*table_levers(config.model, spec).notices, *([full_rank] if full_rank else [])):
            log.info(notice)
    # the levers' statistics, from the fit rows only
    model.set_label_statistics(label_offset(spec.task, facts["fit_label_mean"]), facts["label_min"], facts["label_max"])
    if isinstance(fit_x, TableBatch):  # a streamed run keeps the normal quantiles of standardised values
        model.fit_numeric_buckets(fit_x.numeric, fit_x.missing)
    elif config.model.numeric_buckets and world.is_main:
        log.info("model.numeric_buckets: a streamed run buckets at the normal quantiles of the standardised values")
    interactions = _interactions(spec, fit_x, encoder.table_sizes) if isinstance(fit_x, TableBatch) else None
    if interactions is not None:
        model.set_histories(interactions)  # a no-op without histories
    facts["interactions"] = None if interactions is None else len(interactions.members)
    trainer = TaskTrainer(spec.task, config.train, desc="train", groups=val.groups)
    monitor, higher_is_better = task_monitor(spec.task, settings.monitor)
    train_x, train_labels = fit_x, fit_labels
    if spec.task == "ranking" and isinstance(fit, EncodedRows):  # streamed ranking is refused above
        train_x, train_labels = _lists(config, fit, fit_x, cast(torch.Tensor, fit_labels), val, world), None
    stopping = fit_with_early_stopping(
        trainer,
        model,
        train_x,
        train_labels,
        (val_x, val_labels),
        patience=settings.patience,
        progress=progress if world.is_main else False,
        monitor=monitor,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        higher_is_better=higher_is_better,
        average_epochs=settings.average_epochs,
    )
    if spec.task == "ranking":  # its loss as every epoch measured it, and the ranking metrics
        validation = trainer.evaluate(model, val_x, val_labels)
    else:
        validation = task_metrics(spec.task, val_labels, trainer.predict(model, val_x), val.groups)
    metrics = {
        "validation": {
            "best_epoch": stopping.best_epoch,
            "stopped_early": stopping.stopped_early,
            "rows": len(val),
            **validation,
        },
        "history": stopping.history.epochs,
        "data": {**dataset, "source": source, "task": spec.task, **facts, "table_sizes": encoder.table_sizes},
        "parameters": count_parameters(model),
        "seconds": time.perf_counter() - began,
    }
    model = model.cpu()
    path = Path(out)
    if world.is_main:  # one writer
        catalog = None if fit_table is None else Catalog.build(spec, encoder, fit_table, interactions)
        path = save_table_bundle(model, out, config.model, encoder, config, metrics, catalog)
    return TableRunResult(path, config, metrics, interactions)


def save_table_bundle(
    model: DCN,
    out: str | Path,
    model_config: DCNConfig,
    encoder: TableEncoder,
    train_config: Any,
    metrics: Mapping[str, Any],
    catalog: Catalog | None,
) -> Path:
    """Save a trained table model as a bundle (`dcnrank.bundle.save`) and, beside it, the plot
    of its cross layers' feature interactions; the bundle's folder."""
    path = save(
        model, out, model_config=model_config, encoder=encoder, train_config=train_config, metrics=metrics,
        catalog=catalog,
    )  # fmt: skip
    if model.cross is not None:  # beside the bundle's files, which load ignores
        log.info("wrote %s", model_interactions(model).plot(path / INTERACTIONS_FILE))
    return path


# the fit rows (or this rank's stream of them), validation rows, encoder, facts, and the fit rows'
# catalogue columns (None without the user and item roles, or streamed)
Prepared = tuple["EncodedRows | BatchStream", EncodedRows, TableEncoder, dict[str, Any], "pa.Table | None"]


def _lists(
    config: TrainRunConfig, fit: EncodedRows, fit_x: Any, fit_labels: torch.Tensor, val: EncodedRows, world: World
) -> ListBatches:
    """A ranking run's training lists (`train.list_size`, `train.lists_per_group`), the groups
    left out said once; refused when the validation rows hold no group to rank."""
    if fit.groups is None or val.groups is None:  # pragma: no cover - a ranking spec always has a group
        raise ValueError("a ranking task needs the group of each row")
    held_out = group_lists(val.groups, _labels(val).numpy())
    if len(held_out.sizes) == 0:
        raise ValueError(
            f"ranking: the {len(val)} validation rows hold no group with two rows of different labels, so there "
            "is nothing to rank there; hold out more rows (data.validation_fraction) or check the group column"
        )
    c = config.train
    lists = ListBatches(
        fit_x, fit_labels, fit.groups, c.list_size, c.lists_per_group, c.lists_per_batch, seed=c.seed, world=world
    )
    if world.is_main:
        log.info("ranking: %d groups in %d lists of up to %d rows per epoch", len(lists.kept.sizes),
                 lists.num_lists, c.list_size)  # fmt: skip
        if lists.kept.notice is not None:
            log.warning(lists.kept.notice)
    return lists


def _in_memory(config: TrainRunConfig, spec: FeatureSpec, data: Any) -> Prepared:
    """Hold out validation rows (`data.validation`), fit and encode the table, read slice by
    slice (a Parquet file twice from the file, never whole; anything else read whole)."""
    settings = config.data
    source = source_name(data)
    catalogue = [spec.user, spec.item, *spec.user_columns, *spec.item_columns] if spec.user and spec.item else []
    table = TableSlices.read(data, columns=list(dict.fromkeys([*spec.training_columns, *catalogue])))
    if settings.max_train_rows is not None:
        table = table.head(settings.max_train_rows)
    n = table.num_rows
    fit_rows, val_rows = validation_split(
        n, settings.validation_fraction, settings.validation, settings.seed, what=source
    )
    # the fit rows train in one seeded random order (a sorted file's batches would not mix)
    fit_rows = fit_rows[torch.randperm(len(fit_rows), generator=torch.Generator().manual_seed(settings.seed))]
    # encoded in that order, then the validation rows: fit and validation are slices, not copies
    order = torch.cat([fit_rows, val_rows]).numpy()
    encoder, encoded = fit_and_encode(spec, table, fit_rows.numpy(), source=source, order=order)
    fit, val = encoded[: len(fit_rows)], encoded[len(fit_rows) :]
    label_mean = float(_labels(encoded).double().mean())
    fit_labels = _labels(fit).double()
    facts = {
        "rows": n,
        "n_fit": len(fit),
        "n_validation": len(val),
        "label_mean": label_mean,
        "fit_label_mean": float(fit_labels.mean()),
        "label_min": float(fit_labels.min()),
        "label_max": float(fit_labels.max()),
    }
    # `Trainer` takes a TableBatch wherever it takes an input tensor (len, slices, gathers).
    fit_table = None
    if catalogue:  # the catalogue's columns, in table order
        fit_table = table.rows_of(list(dict.fromkeys(catalogue)), fit_rows.sort().values.numpy())
    return fit, val, encoder, facts, fit_table


def _streamed(config: TrainRunConfig, spec: FeatureSpec, data: Any, progress: bool | None, world: World) -> Prepared:
    """One pass over the file (encoder, validation rows), then this rank's training stream."""
    settings = config.data
    if not isinstance(data, str | Path):
        raise ValueError(
            f"data.stream=true reads a CSV or Parquet file chunk by chunk; pass its path. Received: {source_name(data)}"
        )
    if settings.max_train_rows is not None:
        raise ConfigError(["data.max_train_rows: does not go with data.stream=true (the whole file streams)"])
    histories = [f"model.{flag}" for flag in ("user_history", "item_history") if getattr(config.model, flag)]
    if histories and spec.user is not None and spec.item is not None:
        raise ConfigError(
            [f"{' and '.join(histories)}: do not go with data.stream=true yet (set them false, or read the file whole)"]
        )
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
        "fit_label_mean": table.fit_label_mean,
        "label_min": table.label_min,
        "label_max": table.label_max,
        "streamed": True,
        "ranks": world.size,
    }
    return stream, table.validation, table.encoder, facts, None


def _interactions(spec: FeatureSpec, fit: TableBatch, table_sizes: dict[str, int]) -> Interactions | None:
    """The distinct (user, item) pairs of the encoded fit rows, or None without both roles."""
    if spec.user is None or spec.item is None:
        return None
    positions = spec.role_positions()
    users = fit.categorical[:, positions["user"]].cpu()
    items = fit.categorical[:, positions["item"]].cpu()
    return Interactions.from_pairs(users, items, table_sizes[spec.user], table_sizes[spec.item])


def _labels(rows: EncodedRows) -> torch.Tensor:
    """The labels `fit_and_encode` always returns (it requires the label column)."""
    if rows.labels is None:  # pragma: no cover - fit_and_encode reads the label column or raises
        raise ValueError("the encoded rows have no labels")
    return rows.labels
