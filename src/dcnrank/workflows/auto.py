"""`dcnrank train --auto`: a small, bounded search over the levers on the user's own validation rows.

Each candidate of :data:`AUTO_CANDIDATES` (a few `key=value` overrides on top of the run's
configuration) trains through `train_table` on the same fit rows and is scored on the same
held-out validation rows (`data.validation`, `data.seed`); the one with the best
validation metric of the task (AUC for a binary task, RMSE for regression, NDCG@10 for ranking) is saved to
`out`, with every candidate's score and cost in its `metrics.json` under ``"auto"``.
The test rows, if any, are never read. The cost is one training per candidate.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dcnrank.bundle.load import load
from dcnrank.bundle.target import check_bundle_target
from dcnrank.config.errors import ConfigError
from dcnrank.config.loading import load_config
from dcnrank.config.run_config import TrainRunConfig
from dcnrank.data.spec.feature_spec import FeatureSpec
from dcnrank.training.distributed import world_from_env
from dcnrank.training.tasks import task_monitor
from dcnrank.workflows.train import TableRunResult, save_table_bundle, train_table

__all__ = ["AUTO_CANDIDATES", "auto_metric", "auto_train"]

log = logging.getLogger(__name__)

# name -> overrides of the run's configuration; the first is the configuration as it is.
# Chosen as the levers whose best setting differed between the tables of
# `benchmarks/lever_search.py` (docs/recipe.md, "dcnrank train --auto").
AUTO_CANDIDATES: Mapping[str, tuple[str, ...]] = {
    "as configured": (),
    "dropout 0.3": ("model.dropout=0.3",),  # gained on the Criteo-layout table, lost on the collaborative one
    "batch norm": ("model.deep_norm=batch",),  # gained on MovieLens clicks and thresholds, lost on the others
    "batch 1024": ("train.batch_size=1024",),  # gained on thresholds, lost on the Criteo-layout table
}


def auto_metric(task: str) -> tuple[str, bool]:
    """The validation metric `--auto` chooses by, and whether higher is better.

    Example:
        >>> auto_metric("binary"), auto_metric("regression"), auto_metric("ranking")
        (('auc', True), ('rmse', False), ('ndcg@10', True))
    """
    key, higher = task_monitor(task, "metric")  # the metric early stopping picks epochs by
    return key.removeprefix("val_"), higher


def auto_train(
    config: TrainRunConfig,
    spec: FeatureSpec,
    data: Any,
    out: str | Path,
    *,
    candidates: Mapping[str, Sequence[str]] | None = None,
    progress: bool | None = False,
    device: str = "cpu",
    dataset: Mapping[str, Any] | None = None,
) -> TableRunResult:
    """Train every candidate on `data` as `train_table` would, keep the best on validation, save it to `out`.

    Args:
        config: the run's configuration; each candidate applies its overrides to it.
        spec: the feature spec.
        data: a CSV/Parquet path, DataFrame or Arrow table (read once per candidate).
        out: the bundle folder (checked before the first candidate trains).
        candidates: name -> `key=value` overrides (None: :data:`AUTO_CANDIDATES`).
        progress: show progress bars (`None`: only on a terminal).
        device: ``"cpu"`` or ``"cuda"``.
        dataset: facts about the dataset `data` was cut from, as for `train_table`.

    Returns:
        The chosen candidate's result: its bundle at `out`; `metrics["auto"]` holds
        `metric`, `chosen`, `seconds` and per candidate its `overrides`, validation
        metric, best epoch and seconds.

    Raises:
        ConfigError: with no candidate, or under torchrun (one process only), or as `train_table`.
        BundleError: before any training, if `out` cannot take a bundle.

    Example:
        >>> from dcnrank.config import load_config
        >>> from dcnrank.data.spec.feature_spec import FeatureSpec, NumericColumn
        >>> spec = FeatureSpec((NumericColumn("x"),), label="y", task="regression")
        >>> table = {"x": [float(i) for i in range(40)], "y": [2.0 * i for i in range(40)]}
        >>> config = load_config(overrides=["model.structure=cross_only", "train.epochs=2"])
        >>> picks = {"as configured": (), "lr 0.1": ("train.learning_rate=0.1",)}
        >>> result = auto_train(config, spec, table, tempfile.mkdtemp() + "/b", candidates=picks)
        >>> result.metrics["auto"]["chosen"] in picks, len(result.metrics["auto"]["candidates"])
        (True, 2)
    """
    candidates = AUTO_CANDIDATES if candidates is None else candidates
    if not candidates:
        raise ConfigError(["--auto needs at least one candidate. Received: none"])
    if world_from_env().size > 1:
        raise ConfigError(["--auto trains its candidates in one process; run it without torchrun"])
    check_bundle_target(out)
    metric, higher = auto_metric(spec.task)
    began = time.perf_counter()
    report: dict[str, dict[str, Any]] = {}
    best_name, best_value = "", -math.inf
    with tempfile.TemporaryDirectory(prefix="dcnrank-auto-") as folder:
        for number, (name, overrides) in enumerate(candidates.items(), start=1):
            candidate = load_config(overrides=list(overrides), base=config)
            log.info("--auto: candidate %d of %d, %s", number, len(candidates), name)
            result = train_table(
                candidate, spec, data, Path(folder) / str(number), progress=progress, device=device, dataset=dataset
            )
            value = result.metrics["validation"].get(metric)
            score = -math.inf if value is None else (value if higher else -value)
            report[name] = {
                "overrides": list(overrides),
                f"val_{metric}": value,
                "best_epoch": result.metrics["validation"]["best_epoch"],
                "seconds": result.metrics["seconds"],
            }
            log.info("--auto: %s: validation %s %s", name, metric, "undefined" if value is None else f"{value:.4f}")
            if score > best_value or not best_name:
                best_name, best_value, best = name, score, result
        chosen = load(best.bundle_path)
        auto = {"metric": f"val_{metric}", "chosen": best_name, "seconds": time.perf_counter() - began,
                "candidates": report}  # fmt: skip
        metrics = {**chosen.metrics, "auto": auto}
        path = save_table_bundle(
            chosen.model, out, chosen.model_config, chosen.encoder, chosen.train, metrics, chosen.catalog
        )
    return TableRunResult(path, best.config, metrics, best.interactions)
