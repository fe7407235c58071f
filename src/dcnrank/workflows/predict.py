"""`predict_table` and `predict_file`: score every row of a table with a bundle, chunk
by chunk, and measure the predictions when the table has labels.

Both read the table in chunks (a file through `TableStream`, never whole; an in-memory
table in slices), encode and score each, and keep only what the metrics need (the
outputs, labels and groups: a few bytes per row). `predict_file` writes the scored
chunks to the output file as they come, into a temporary sibling renamed into place at
the end, so an interrupted run leaves no partial file; it refuses, before scoring, an
output that is the input table itself (`check_predictions_out`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from dcnrank import atomic
from dcnrank.bundle.bundle import Bundle
from dcnrank.data.encoding.table_error import TableDataError
from dcnrank.data.sources.table_readers import as_arrow_table, check_unique_columns, source_name, table_format
from dcnrank.data.streaming.table_stream import DEFAULT_BLOCK_ROWS, TableStream
from dcnrank.data.streaming.table_writer import TableWriter
from dcnrank.row_messages import rows_from
from dcnrank.training.tasks import task_metrics, task_predictions

__all__ = ["PREDICTION_COLUMN", "TablePredictions", "check_predictions_out", "predict_file", "predict_table"]

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


def predict_table(bundle: Bundle, data: Any, *, keep: Sequence[str] = (), batch_size: int = 16384) -> TablePredictions:
    """Score `data` with `bundle`; measure the predictions if the label column is there.

    Args:
        bundle: the bundle.
        data: a CSV/Parquet path, DataFrame, Arrow table or column mapping with the
            spec's input columns.
        keep: columns of `data` to copy into the output before the predictions (an
            id, for instance); each once, and not :data:`PREDICTION_COLUMN`.
        batch_size: int ≥ 1, rows per forward pass.

    Returns:
        The predictions table and the metrics (None without labels).

    Raises:
        ValueError: if `keep` names :data:`PREDICTION_COLUMN` or a column twice.
        TableDataError: if a `keep` or spec column is missing, or a cell or label
            does not fit the spec (named column and rows).

    Example:
        >>> from dcnrank.data.spec.feature_spec import FeatureSpec, NumericColumn
        >>> from dcnrank.data.encoding.table_encoder import TableEncoder
        >>> from dcnrank.config.model_config import DCNConfig
        >>> from dcnrank.models.table_inputs import build_table_dcn
        >>> spec = FeatureSpec((NumericColumn("x"),), label="y", task="binary")
        >>> encoder = TableEncoder.fit(spec, {"x": [1.0, 2.0], "y": [0, 1]})
        >>> config = DCNConfig(structure="cross_only", embedding_dim=2)
        >>> bundle = Bundle(build_table_dcn(config, spec, encoder.table_sizes), config, encoder)
        >>> scored = predict_table(bundle, {"id": [7, 8], "x": [1.0, 3.0], "y": [0, 1]}, keep=["id"])
        >>> scored.table.column_names, sorted(scored.metrics)
        (['id', 'prediction'], ['auc', 'logloss', 'loss', 'rows'])
    """
    scorer = _Scorer(bundle, keep, batch_size)
    parts = list(scorer.score(_chunks(data, keep)))
    table = pa.concat_tables(parts) if parts else pa.table({})
    return TablePredictions(table, scorer.metrics())


def predict_file(
    bundle: Bundle,
    data: str | Path | pa.Table,
    out: str | Path,
    *,
    keep: Sequence[str] = (),
    batch_size: int = 16384,
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> tuple[int, dict[str, Any] | None]:
    """Score a CSV/Parquet file chunk by chunk (or an Arrow table slice by slice) into `out`
    (.parquet, .csv or .tsv, by name).

    Memory holds one chunk and a few bytes per row for the metrics, whatever the
    file's size. `out` appears only once every row is written; an existing file there
    is then replaced, unless it is `data` itself, which is refused before any row is
    read (:func:`check_predictions_out`). Temporary files that a killed run writing
    `out` left beside it are deleted first.

    Args:
        bundle: the bundle.
        data: the file to score, or an Arrow table (e.g. a `--dataset` split's test rows).
        out: the predictions file: the `keep` columns, then :data:`PREDICTION_COLUMN`.
        keep: input columns to copy, as :func:`predict_table`.
        batch_size: int ≥ 1, rows per forward pass.
        block_rows: int ≥ 1, rows read at a time.

    Returns:
        The number of rows scored, and the metrics (None without labels).

    Raises:
        ValueError: as :func:`check_predictions_out`, or on a `keep` as :func:`predict_table`.
        TableDataError: as :func:`predict_table`, rows named by their place in the file.
    """
    scorer = _Scorer(bundle, keep, batch_size)
    check_predictions_out(data, out)
    atomic.remove_stale_temporaries(Path(out))
    empty = True
    with TableWriter(out) as writer:
        for scored in scorer.score(_chunks(data, keep, block_rows)):
            writer.write(scored)
            empty = False
        if empty:  # a file without rows: an empty predictions table
            writer.write(pa.table({name: pa.array([], pa.string()) for name in [*keep, PREDICTION_COLUMN]}))
    return writer.rows, scorer.metrics()


def check_predictions_out(data: Any, out: str | Path) -> Path:
    """Refuse, before anything is scored, an `out` that predictions cannot be written to
    without destroying the table being scored or a folder.

    An existing file at `out` is replaced (whole, once every row is written by
    :func:`predict_file`) only if it is a predictions file, i.e. a table whose last
    column is :data:`PREDICTION_COLUMN`; any other file there is the user's and refused.

    Args:
        data: the table to score (a path; an in-memory table is never the same file).
        out: the predictions file.

    Returns:
        `out`, as a `Path`.

    Raises:
        ValueError: if `out`'s name gives no table format, `out` is `data` (the same
            file by path, through a symbolic link, or a hard link: same device and
            inode), an existing file that is not a predictions file, a folder, or a
            path under a file.

    Example:
        >>> import tempfile
        >>> table = Path(tempfile.mkdtemp()) / "t.csv"
        >>> _ = table.write_text("x\\n1\\n")
        >>> check_predictions_out(table, table.parent / "p.csv").name
        'p.csv'
        >>> check_predictions_out(table, table.parent / "." / "t.csv")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: ...t.csv: is the table being scored (the same file as ...t.csv); refusing to write...
    """
    target = Path(out)
    table_format(target)
    if target.is_dir():
        raise ValueError(f"{target}: is a folder; the predictions are written to a file (.parquet, .csv or .tsv)")
    try:
        same = isinstance(data, str | Path) and os.path.samefile(data, target)
    except OSError:  # one of them does not exist (yet): they cannot be one file
        same = False
    if same:
        how = "the same file as" if os.path.realpath(data) == os.path.realpath(target) else "a hard link to"
        raise ValueError(
            f"{target}: is the table being scored ({how} {data}); refusing to write the predictions over it: "
            "give another output file"
        )
    if target.exists() and not _holds_predictions(target):
        raise ValueError(
            f"{target}: exists and is not a predictions file (its last column is not {PREDICTION_COLUMN!r}); "
            "refusing to replace it: give a new output file"
        )
    ancestor = target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ValueError(f"{target}: cannot create it: {ancestor} is not a folder")
    return target


def _holds_predictions(path: Path) -> bool:
    """Whether the existing file `path` reads as a table whose last column is the predictions'
    (one that `predict` wrote, which it may replace); a symbolic link never counts."""
    if path.is_symlink():
        return False
    try:
        names = TableStream(path).column_names
    except (OSError, ValueError):  # not a table dcnrank can read: not one it wrote
        return False
    return bool(names) and names[-1] == PREDICTION_COLUMN


def _chunks(
    data: Any, keep: Sequence[str], block_rows: int = DEFAULT_BLOCK_ROWS
) -> Iterator[tuple[pa.Table, int, str]]:
    """`(table, first row, source)` chunks of a file (read chunk by chunk) or of an in-memory table."""
    source = source_name(data)
    if isinstance(data, str | Path):
        stream = TableStream(data, block_rows=block_rows)
        names = stream.column_names
        _check_keep(names, keep, source)
        with contextlib.closing(stream.chunks()) as chunks:  # the reader closes at once on an error
            for chunk in chunks:
                yield chunk.table, chunk.first_row, source
        return
    table = as_arrow_table(data)
    _check_keep(table.column_names, keep, source)
    for start in range(0, max(table.num_rows, 1), block_rows):
        yield table.slice(start, block_rows), start, source


def _check_keep(names: Sequence[str], keep: Sequence[str], source: str) -> None:
    """Refuse `keep` columns the table lacks or names more than once."""
    absent = [name for name in keep if name not in names]
    if absent:
        raise TableDataError(f"{source}: cannot keep missing column(s) {', '.join(map(repr, absent))}")
    check_unique_columns(names, keep, source)


class _Scorer:
    """Encodes and scores chunks; gathers outputs, labels and groups for the metrics."""

    def __init__(self, bundle: Bundle, keep: Sequence[str], batch_size: int) -> None:
        keep = list(keep)
        if PREDICTION_COLUMN in keep:
            raise ValueError(
                f"`keep` cannot copy a column named {PREDICTION_COLUMN!r}: the output's own column has that name, "
                f"so the output would hold two. Received: keep={keep}"
            )
        twice = sorted({name for name in keep if keep.count(name) > 1})
        if twice:
            raise ValueError(
                f"`keep` names column(s) {', '.join(map(repr, twice))} more than once; the output would hold "
                f"two columns of one name. Received: keep={keep}"
            )
        self.bundle, self.keep, self.batch_size = bundle, keep, batch_size
        self.outputs: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []
        self.groups: list[np.ndarray] = []
        self.labelled = True

    def score(self, chunks: Iterator[tuple[pa.Table, int, str]]) -> Iterator[pa.Table]:
        task = self.bundle.spec.task
        for table, first_row, source in chunks:
            with rows_from(first_row):
                rows = self.bundle.encode(table, source=source)
            outputs = self.bundle.outputs(rows, batch_size=self.batch_size)
            predictions = task_predictions(task, outputs)
            self.outputs.append(outputs)
            self.labelled = self.labelled and rows.labels is not None
            if rows.labels is not None:
                self.labels.append(rows.labels)
            if rows.groups is not None:
                self.groups.append(rows.groups)
            yield table.select(self.keep).append_column(PREDICTION_COLUMN, pa.array(predictions.numpy()))

    def metrics(self) -> dict[str, Any] | None:
        if not self.labelled or not self.labels:
            return None
        labels, outputs = torch.cat(self.labels), torch.cat(self.outputs)
        groups = np.concatenate(self.groups) if len(self.groups) == len(self.labels) else None
        return {**task_metrics(self.bundle.spec.task, labels, outputs, groups), "rows": len(labels)}
