"""Score a bundle on labelled rows: the task's metrics, and per-user ranking metrics.

`evaluate_table` scores a table bundle on any labelled table (a file, a dataset split's
test rows).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from dcnrank.bundle.bundle import Bundle
from dcnrank.data.encoding.table_columns import read_categories
from dcnrank.data.encoding.table_encoder import checked_groups
from dcnrank.data.encoding.table_error import TableDataError
from dcnrank.data.sources.table_readers import as_arrow_table, read_table, source_name
from dcnrank.metrics.ranking import ranking_metrics
from dcnrank.training.tasks import RANKING_RELEVANT, task_metrics, task_predictions

__all__ = ["RELEVANT_REGRESSION_LABEL", "evaluate_table", "relevance_threshold"]

# A regression label at or above this is "relevant" for MAP, MRR, precision and recall unless
# told otherwise: MovieLens' 4 stars of 5.
RELEVANT_REGRESSION_LABEL = 4.0


def relevance_threshold(task: str, relevant: float | None = None) -> float:
    """The label from which a row counts as relevant to its user in the ranking metrics.

    Args:
        task: ``"regression"``, ``"binary"`` or ``"ranking"``.
        relevant: an explicit threshold, or None for the task's:
            :data:`RELEVANT_REGRESSION_LABEL` (4) for regression, 1 (a click) for binary,
            1 for ranking (keras-rs' rule: a graded label ≥ 1 is relevant).

    Returns:
        The threshold.

    Raises:
        ValueError: if `relevant` is not a finite number.

    Example:
        >>> relevance_threshold("regression"), relevance_threshold("binary"), relevance_threshold("regression", 3)
        (4.0, 1.0, 3.0)
    """
    if relevant is None:
        return RELEVANT_REGRESSION_LABEL if task == "regression" else RANKING_RELEVANT if task == "ranking" else 1.0
    if isinstance(relevant, bool) or not isinstance(relevant, int | float) or not math.isfinite(relevant):
        raise ValueError(f"`relevant` must be a finite number. Received: relevant={relevant!r}")
    return float(relevant)


def evaluate_table(
    bundle: Bundle,
    data: Any,
    *,
    k: int = 10,
    relevant: float | None = None,
    source: str | None = None,
    batch_size: int = 16384,
) -> dict[str, Any]:
    """Metrics of a table bundle on labelled rows: its task's, and per-user ranking metrics.

    The task's metrics are those of training (`training.tasks.task_metrics`):
    regression `loss` (MSE), `rmse`, `mae`; binary `loss`, `logloss`, `auc` and, with
    the spec's `group`, `group_auc` and `groups`. When the spec names a `user` column,
    the rows are also grouped by user (raw values, so users outside the vocabulary stay
    apart) and each user's rows ranked by prediction: NDCG@k with gain `2^label − 1`,
    and MAP@k, MRR, precision@k and recall@k with rows whose label is ≥ `relevant`
    relevant (`users` says how many users). A ranking task's metrics are these five,
    over its `group` column's groups (`groups` says how many). Ties in score keep the
    rows' order in the table.

    Args:
        bundle: the table bundle.
        data: a CSV/Parquet path, DataFrame, Arrow table or column mapping holding the
            spec's input columns and its label.
        k: int ≥ 1, the ranking cutoff. Defaults to 10.
        relevant: the relevance threshold (:func:`relevance_threshold`; None: 4 for
            regression, 1 for binary).
        source: the table's name in messages (default: the path, or its kind).
        batch_size: int ≥ 1, rows per forward pass.

    Returns:
        `rows`, then `users` (with a user role; `groups` for a ranking task), the task's
        metrics, then the ranking metrics (with a user role, or the ranking task's).

    Raises:
        TableDataError: if the label column is missing or the table holds no rows,
            or a cell does not fit the spec (named column and rows), or a row has no user.
        ValueError: on a bad `k`, `relevant` or `batch_size`.

    Example:
        >>> from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec, NumericColumn
        >>> from dcnrank.data.encoding.table_encoder import TableEncoder
        >>> from dcnrank.config.model_config import DCNConfig
        >>> from dcnrank.models.table_inputs import build_table_dcn
        >>> spec = FeatureSpec((CategoricalColumn("u"), NumericColumn("x")), label="y", task="regression", user="u")
        >>> rows = {"u": [1, 1, 2], "x": [0.0, 1.0, 2.0], "y": [5.0, 3.0, 4.0]}
        >>> encoder, config = TableEncoder.fit(spec, rows), DCNConfig(structure="cross_only", embedding_dim=2)
        >>> bundle = Bundle(build_table_dcn(config, spec, encoder.table_sizes), config, encoder)
        >>> metrics = evaluate_table(bundle, rows, k=2)
        >>> metrics["rows"], metrics["users"], sorted(metrics)[:4]
        (3, 2, ['loss', 'mae', 'map@2', 'mrr'])
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"`k` must be a positive int. Received: k={k!r}")
    threshold = relevance_threshold(bundle.spec.task, relevant)
    spec = bundle.spec
    source = source if source is not None else source_name(data)
    table = read_table(data) if isinstance(data, str | Path) else as_arrow_table(data)
    if spec.label not in table.column_names:
        raise TableDataError(
            f"{source}: evaluating needs the label column {spec.label!r}, which the table lacks; "
            f"its columns: {', '.join(table.column_names[:50])}"
        )
    if table.num_rows == 0:
        raise TableDataError(f"{source}: the table holds no rows to evaluate")
    encoded = bundle.encode(table, source=source)
    labels = encoded.labels
    if labels is None:  # pragma: no cover - encode reads the label column when the table has it
        raise TableDataError(f"{source}: no labels")
    outputs = bundle.outputs(encoded, batch_size=batch_size)
    metrics: dict[str, Any] = {"rows": len(encoded)}
    ranking: dict[str, Any] = {}
    by = spec.group if spec.task == "ranking" else spec.user  # a ranking spec always has a group
    if by is not None:
        groups = checked_groups(by, read_categories(table, by, source), source)
        predictions = task_predictions(spec.task, outputs)
        ranking = ranking_metrics(labels.numpy(), predictions.numpy(), groups, k=k, threshold=threshold)
        metrics["groups" if spec.task == "ranking" else "users"] = ranking.pop("groups")
    if spec.task == "ranking":  # its metrics are the ranking metrics, at this k and threshold
        return {**metrics, **ranking}
    return {**metrics, **task_metrics(spec.task, labels, outputs, encoded.groups), **ranking}
