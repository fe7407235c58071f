"""`predict_table`: score every row of a table with a table bundle, and measure the
predictions when the table has labels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from dcnrank.bundle.table_bundle import TableBundle
from dcnrank.data.table_error import TableDataError
from dcnrank.data.table_readers import as_arrow_table, read_table, source_name
from dcnrank.workflows.table_task import task_metrics, task_predictions

__all__ = ["PREDICTION_COLUMN", "TablePredictions", "predict_table"]

# The output column: a click probability for a binary task, the predicted value for regression.
PREDICTION_COLUMN = "prediction"


@dataclass(frozen=True, eq=False)
class TablePredictions:
    """The scored table and, when it had labels, the metrics.

    Args:
        table: the `keep` columns, then :data:`PREDICTION_COLUMN`; one row per input
            row, in input order.
        metrics: `task_metrics` of the predictions (with `rows`), or None without labels.
    """

    table: pa.Table
    metrics: dict[str, Any] | None


def predict_table(
    bundle: TableBundle, data: Any, *, keep: Sequence[str] = (), batch_size: int = 16384
) -> TablePredictions:
    """Score `data` with `bundle`; measure the predictions if the label column is there.

    Args:
        bundle: the table bundle.
        data: a CSV/Parquet path, DataFrame, Arrow table or column mapping with the
            spec's input columns.
        keep: columns of `data` to copy into the output before the predictions (an
            id, for instance).
        batch_size: int ≥ 1, rows per forward pass.

    Returns:
        The predictions table and the metrics (None without labels).

    Raises:
        TableDataError: if a `keep` or spec column is missing, or a cell or label
            does not fit the spec (named column and rows).

    Example:
        >>> from dcnrank.data.feature_spec import FeatureSpec, NumericColumn
        >>> from dcnrank.data.table_encoder import TableEncoder
        >>> from dcnrank.models.config import DCNConfig
        >>> from dcnrank.models.table_inputs import build_table_dcn
        >>> spec = FeatureSpec((NumericColumn("x"),), label="y", task="binary")
        >>> encoder = TableEncoder.fit(spec, {"x": [1.0, 2.0], "y": [0, 1]})
        >>> config = DCNConfig(structure="cross_only", embedding_dim=2)
        >>> bundle = TableBundle(build_table_dcn(config, spec, encoder.table_sizes), config, encoder)
        >>> scored = predict_table(bundle, {"id": [7, 8], "x": [1.0, 3.0], "y": [0, 1]}, keep=["id"])
        >>> scored.table.column_names, sorted(scored.metrics)
        (['id', 'prediction'], ['auc', 'logloss', 'loss', 'rows'])
    """
    source = source_name(data)
    table = read_table(data) if isinstance(data, str | Path) else as_arrow_table(data)
    absent = [name for name in keep if name not in table.column_names]
    if absent:
        raise TableDataError(f"{source}: cannot keep missing column(s) {', '.join(map(repr, absent))}")
    rows = bundle.encode(table, source=source)
    outputs = bundle.outputs(rows, batch_size=batch_size)
    predictions = task_predictions(bundle.spec.task, outputs)
    scored = table.select(list(keep)).append_column(PREDICTION_COLUMN, pa.array(predictions.numpy()))
    metrics = None
    if rows.labels is not None:
        metrics = {**task_metrics(bundle.spec.task, rows.labels, outputs, rows.groups), "rows": len(rows)}
    return TablePredictions(scored, metrics)
