"""`TableEncoder`: vocabularies and statistics fitted on training rows, turning any table
with the spec's columns into model tensors (`TableBatch`), labels and groups."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pyarrow as pa
import torch

from dcnrank.data.encoding.feature_hashing import hash_rows
from dcnrank.data.encoding.table_batch import PADDING, TableBatch, index_dtype
from dcnrank.data.encoding.table_columns import (
    Categories,
    Items,
    Numbers,
    categories_as,
    read_categories,
    read_items,
    read_numbers,
)
from dcnrank.data.encoding.table_error import TableDataError
from dcnrank.data.encoding.table_statistics import TableStatistics, log1p_values
from dcnrank.data.encoding.vocabulary import OOV_INDEX, Vocabulary
from dcnrank.data.sources.table_readers import as_arrow_table, source_name
from dcnrank.data.sources.table_slices import TableSlices
from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec, MultiHotColumn, NumericColumn
from dcnrank.metrics.classification import validate_binary_labels
from dcnrank.prefetch import prefetched
from dcnrank.row_messages import describe_rows, rows_from

__all__ = ["EncodedRows", "TableEncoder", "checked_groups", "checked_labels", "fit_and_encode", "parse_columns"]

# A standardised value is clipped to ±this many standard deviations: far beyond any training
# value, yet small enough that the cross layers' products of it stay finite in float32.
STANDARDISED_LIMIT = 1e4

log = logging.getLogger(__name__)

_NUMPY_INDEX = {torch.int32: np.int32, torch.int64: np.int64}

Parsed = Numbers | Categories | Items


@dataclass(frozen=True, eq=False)
class EncodedRows:
    """A table encoded for a model: its features, and its labels and groups when present.

    Args:
        features: the model's inputs.
        labels: float32 `(N,)` (0/1 for a binary task), or None when the table had no
            label column.
        groups: `(N,)` int64 or str group of each row, or None.

    Example:
        >>> rows = EncodedRows(TableBatch(torch.zeros(2, 0, dtype=torch.long), torch.zeros(2, 1),
        ...                               torch.zeros(2, 1, dtype=torch.bool)), torch.tensor([0.0, 1.0]))
        >>> rows.take(torch.tensor([1])).labels.tolist()
        [1.0]
    """

    features: TableBatch
    labels: torch.Tensor | None = None
    groups: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.features)

    @staticmethod
    def concat(parts: list[EncodedRows]) -> EncodedRows:
        """The rows of `parts` one after the other (labels and groups when all have them)."""
        labels = [p.labels for p in parts if p.labels is not None]
        groups = [p.groups for p in parts if p.groups is not None]
        return EncodedRows(
            TableBatch.concat([p.features for p in parts]),
            torch.cat(labels) if len(labels) == len(parts) else None,
            np.concatenate(groups) if len(groups) == len(parts) else None,
        )

    def __getitem__(self, index: slice) -> EncodedRows:
        """The rows of a slice."""
        return EncodedRows(
            self.features[index],
            None if self.labels is None else self.labels[index],
            None if self.groups is None else self.groups[index],
        )

    def put(self, index: torch.Tensor, other: EncodedRows) -> EncodedRows:
        """Overwrite the rows at `index` with `other`'s (see `TableBatch.put`); use the result."""
        labels = self.labels
        if labels is not None and other.labels is not None:
            labels[index] = other.labels
        groups = self.groups
        if groups is not None and other.groups is not None:
            groups = groups.astype(np.result_type(groups, other.groups), copy=False)  # widened text: a copy
            groups[index.numpy()] = other.groups
        return EncodedRows(self.features.put(index, other.features), labels, groups)

    def allocate(self, rows: int) -> EncodedRows:
        """`rows` rows of the dtypes and widths of these (zeros, multi-hot padding, empty
        groups), for `put` to fill."""
        f = self.features
        features = TableBatch(
            f.categorical.new_zeros((rows, f.categorical.shape[1])),
            f.numeric.new_zeros((rows, f.numeric.shape[1])),
            f.missing.new_zeros((rows, f.missing.shape[1])),
            tuple(t.new_full((rows, t.shape[1]), PADDING) for t in f.multi_hot),
        )
        return EncodedRows(
            features,
            None if self.labels is None else self.labels.new_zeros(rows),
            None if self.groups is None else np.empty(rows, dtype=self.groups.dtype),
        )

    def take(self, index: torch.Tensor) -> EncodedRows:
        """The rows at `index` (1-D integer tensor), in its order."""
        return EncodedRows(
            self.features[index],
            None if self.labels is None else self.labels[index],
            None if self.groups is None else self.groups[index.numpy()],
        )


def parse_columns(spec: FeatureSpec, table: pa.Table, source: str, with_label: bool) -> dict[str, Parsed]:
    """Every spec column of `table` (and the label and group columns when `with_label`) as
    numpy values, checked cell by cell (`dcnrank.data.encoding.table_columns`)."""
    parsed: dict[str, Parsed] = {}
    for column in spec.columns:
        if isinstance(column, NumericColumn):
            parsed[column.name] = read_numbers(table, column.name, source)
        elif isinstance(column, CategoricalColumn):
            parsed[column.name] = read_categories(table, column.name, source)
        else:
            parsed[column.name] = read_items(table, column.name, column.separator, source)
    if with_label:
        parsed[spec.label] = read_numbers(table, spec.label, source)
        if spec.group is not None and spec.group not in parsed:
            parsed[spec.group] = read_categories(table, spec.group, source)
    return parsed


@dataclass(frozen=True, eq=False)
class TableEncoder:
    """What a table model learned from its training rows besides weights.

    Per categorical column without `hash_buckets` and per multi-hot column, a
    vocabulary of the values (items) seen in at least `min_count` training rows;
    per numeric column, the mean and standard deviation of its present training
    values (after `log1p` if the spec asks), with which every table is standardised:
    ``(x − mean) / std``. A constant column gets std 1.

    Build one with :meth:`fit` (or :func:`fit_and_encode`); :meth:`encode` then
    turns any table with the spec's columns into tensors.

    Args:
        spec: the feature spec.
        vocabularies: column name -> vocabulary, for the vocabulary columns in spec order.
        numeric: numeric column name -> ``(mean, std)``, std > 0.

    Raises:
        ValueError: if a vocabulary or statistic is missing, extra or not finite.

    Example:
        >>> from dcnrank.data.spec.feature_spec import FeatureSpec, NumericColumn, CategoricalColumn
        >>> spec = FeatureSpec((NumericColumn("x"), CategoricalColumn("c")), label="y", task="regression")
        >>> encoder = TableEncoder.fit(spec, {"x": [1.0, 3.0], "c": ["a", "b"], "y": [0.5, 1.5]})
        >>> encoder.numeric["x"], encoder.table_sizes
        ((2.0, 1.0), {'c': 3})
        >>> rows = encoder.encode({"x": [5.0, None], "c": ["b", "zz"]})
        >>> rows.features.numeric.tolist(), rows.features.missing.tolist(), rows.features.categorical.tolist()
        ([[3.0], [0.0]], [[False], [True]], [[2], [0]])
    """

    spec: FeatureSpec
    vocabularies: dict[str, Vocabulary] = field(default_factory=dict)
    numeric: dict[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        wanted = [
            c.name
            for c in self.spec.columns
            if isinstance(c, MultiHotColumn) or (isinstance(c, CategoricalColumn) and c.hash_buckets is None)
        ]
        if list(self.vocabularies) != wanted:
            raise ValueError(
                f"`vocabularies` must hold the vocabulary columns {wanted} in order. "
                f"Received: {list(self.vocabularies)}"
            )
        numeric = [c.name for c in self.spec.of_type("numeric")]
        if list(self.numeric) != numeric:
            raise ValueError(
                f"`numeric` must hold the numeric columns {numeric} in order. Received: {list(self.numeric)}"
            )
        for name, (mean, std) in self.numeric.items():
            if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
                raise ValueError(
                    f"`numeric[{name!r}]` must be a finite (mean, std) with std > 0. Received: ({mean!r}, {std!r})"
                )

    @property
    def table_sizes(self) -> dict[str, int]:
        """Embedding rows per categorical and multi-hot column, OOV row included, in spec order."""
        sizes = {}
        for column in self.spec.columns:
            if isinstance(column, CategoricalColumn) and column.hash_buckets is not None:
                sizes[column.name] = column.hash_buckets + 1
            elif not isinstance(column, NumericColumn):
                sizes[column.name] = self.vocabularies[column.name].size
        return sizes

    @property
    def index_dtype(self) -> torch.dtype:
        """The dtype of the encoded embedding rows (`TableBatch.categorical`, `multi_hot`):
        int32 when every table fits it (half the memory of int64), else int64."""
        return index_dtype(max(self.table_sizes.values(), default=0))

    @classmethod
    def fit(
        cls, spec: FeatureSpec, data: Any, rows: np.ndarray | None = None, *, source: str | None = None
    ) -> TableEncoder:
        """Fit vocabularies and statistics on `rows` of `data` (all rows if None).

        The whole table is checked (so a bad cell is named by its row in `data`), but
        only `rows` count towards vocabularies and statistics.

        Args:
            spec: the feature spec.
            data: a `pyarrow.Table`, pandas DataFrame or mapping of columns.
            rows: 1-D int array of training row positions, or None.
            source: the table's name in messages (default: from its type).

        Returns:
            The fitted encoder.

        Raises:
            TableDataError: on missing columns, cells that do not fit their column's
                type, bad labels (see :meth:`encode`), or a numeric column with no
                present value in `rows`.
        """
        return fit_and_encode(spec, data, rows, source=source)[0]

    @classmethod
    def from_statistics(cls, statistics: TableStatistics, source: str) -> TableEncoder:
        """The encoder of the value counts and numeric moments gathered over the training rows.

        Raises:
            TableDataError: if a numeric column had no present training value.
        """
        encoder = cls(statistics.spec, statistics.vocabularies(), statistics.numeric(source))
        sizes = encoder.table_sizes
        log.info(
            "fitted on %d training rows: %d numeric columns, %d embedding tables of %d rows in all",
            statistics.rows,
            len(encoder.numeric),
            len(sizes),
            sum(sizes.values()),
        )
        return encoder

    def encode(self, data: Any, *, source: str | None = None) -> EncodedRows:
        """Encode every row of `data`; labels and groups too when their columns are there.

        Categorical values outside the vocabulary and missing ones go to row 0;
        numeric values are standardised, missing ones set to 0 with their flag raised.
        Labels must be present in every row; for a binary task they must be 0 or 1.

        Args:
            data: a `pyarrow.Table`, pandas DataFrame or mapping of columns.
            source: the table's name in messages.

        Returns:
            The encoded rows (`labels` None when the table has no label column).

        Raises:
            TableDataError: naming the source, column and rows: missing input columns,
                cells of the wrong type, `log1p` of a value ≤ −1, missing or (binary)
                non-0/1 labels, missing groups.
        """
        table, source = _as_table(data, source)
        with_label = self.spec.label in table.column_names
        self.spec.check_columns(table.column_names, source, need_label=with_label)
        return self._encode(parse_columns(self.spec, table, source, with_label), table.num_rows, source, with_label)

    def _encode(self, parsed: Mapping[str, Parsed], num_rows: int, source: str, with_label: bool) -> EncodedRows:
        spec = self.spec
        categorical = np.zeros((num_rows, len(spec.of_type("categorical"))), dtype=_NUMPY_INDEX[self.index_dtype])
        for j, column in enumerate(spec.of_type("categorical")):
            categorical[:, j] = self._category_rows(
                cast(CategoricalColumn, column), cast(Categories, parsed[column.name]), source
            )
        numerics = spec.of_type("numeric")
        numeric = np.zeros((num_rows, len(numerics)), dtype=np.float32)
        missing = np.zeros((num_rows, len(numerics)), dtype=bool)
        for j, column in enumerate(numerics):
            numbers = cast(Numbers, parsed[column.name])
            values = log1p_values(cast(NumericColumn, column), numbers, source)
            mean, std = self.numeric[column.name]
            standardised = np.where(numbers.missing, 0.0, (values - mean) / std)
            # a value far outside the training range stays finite through the model (no inf, no NaN score)
            numeric[:, j] = np.clip(standardised, -STANDARDISED_LIMIT, STANDARDISED_LIMIT)
            missing[:, j] = numbers.missing
        multi_hot = tuple(
            torch.from_numpy(self._item_matrix(cast(MultiHotColumn, column), cast(Items, parsed[column.name]), source))
            for column in spec.of_type("multi_hot")
        )
        labels = groups = None
        if with_label:
            label_values = checked_labels(spec, cast(Numbers, parsed[spec.label]), source)
            labels = torch.from_numpy(label_values.astype(np.float32))
            if spec.group is not None:
                groups = checked_groups(spec.group, cast(Categories, parsed[spec.group]), source)
        features = TableBatch(
            torch.from_numpy(categorical), torch.from_numpy(numeric), torch.from_numpy(missing), multi_hot
        )
        return EncodedRows(features, labels, groups)

    def _category_rows(self, column: CategoricalColumn, categories: Categories, source: str) -> np.ndarray:
        if column.hash_buckets is not None:
            if categories.uniques is not None and categories.codes is not None:  # hash each distinct value once
                rows = hash_rows(categories.uniques, np.zeros(len(categories.uniques), bool), column.hash_buckets)
                rows = rows[categories.codes]
                rows[categories.missing] = OOV_INDEX
                return rows
            return hash_rows(categories.values, categories.missing, column.hash_buckets)
        return _vocabulary_rows(self.vocabularies[column.name], categories, source, column.name)

    def _item_matrix(self, column: MultiHotColumn, items: Items, source: str) -> np.ndarray:
        item_rows = _vocabulary_rows(
            self.vocabularies[column.name],
            Categories(items.values, np.zeros(len(items.values), bool)),
            source,
            column.name,
        )
        lengths = np.bincount(items.rows, minlength=items.num_rows)
        width = max(1, int(lengths.max()) if len(lengths) else 1)
        matrix = np.full((items.num_rows, width), PADDING, dtype=_NUMPY_INDEX[self.index_dtype])
        starts = np.cumsum(lengths) - lengths
        matrix[items.rows, np.arange(len(items.rows)) - starts[items.rows]] = item_rows
        return matrix

    def to_dict(self) -> dict[str, Any]:
        """``{"spec", "vocabularies", "numeric": {name: {"mean", "std"}}}``, JSON-serialisable."""
        return {
            "spec": self.spec.to_dict(),
            "vocabularies": {name: v.to_dict() for name, v in self.vocabularies.items()},
            "numeric": {name: {"mean": mean, "std": std} for name, (mean, std) in self.numeric.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TableEncoder:
        """Rebuild an encoder from :meth:`to_dict`'s output.

        Raises:
            ValueError: if a key is missing or a part is invalid (the message names it).
        """
        if not isinstance(data, Mapping) or set(data) != {"spec", "vocabularies", "numeric"}:
            raise ValueError(
                "a table encoder must be a dict with exactly the keys 'spec', 'vocabularies' and 'numeric'. "
                f"Received: {list(data) if isinstance(data, Mapping) else data!r:.200}"
            )
        spec = FeatureSpec.from_dict(data["spec"])
        for key in ("vocabularies", "numeric"):
            if not isinstance(data[key], Mapping):
                raise ValueError(f"`{key}` must map column names to entries. Received: {data[key]!r:.200}")
        vocabularies = {}
        for name, entry in data["vocabularies"].items():
            try:
                vocabularies[name] = Vocabulary.from_dict(entry)
            except ValueError as error:
                raise ValueError(f"vocabulary of {name!r}: {error}") from None
        numeric = {}
        for name, entry in data["numeric"].items():
            if not isinstance(entry, Mapping) or set(entry) != {"mean", "std"}:
                raise ValueError(f"numeric statistics of {name!r} must be {{mean, std}}. Received: {entry!r:.200}")
            if not all(isinstance(entry[k], int | float) and not isinstance(entry[k], bool) for k in ("mean", "std")):
                raise ValueError(f"numeric statistics of {name!r} must be numbers. Received: {entry!r:.200}")
            numeric[name] = (float(entry["mean"]), float(entry["std"]))
        return cls(spec, vocabularies, numeric)


def _as_table(data: Any, source: str | None) -> tuple[pa.Table, str]:
    return as_arrow_table(data), source if source is not None else source_name(data)


def _vocabulary_rows(vocabulary: Vocabulary, categories: Categories, source: str, name: str) -> np.ndarray:
    if vocabulary.values.size == 0:
        return np.full(len(categories.values), OOV_INDEX, dtype=np.int64)
    if categories.uniques is not None and categories.codes is not None and categories.kind == vocabulary.kind:
        rows = vocabulary.encode(categories.uniques)[categories.codes]  # look up each distinct value once
        rows[categories.missing] = OOV_INDEX
        return rows
    categories = categories_as(categories, vocabulary.kind, source, name)
    rows = vocabulary.encode(categories.values)
    rows[categories.missing] = OOV_INDEX
    return rows


def checked_labels(spec: FeatureSpec, numbers: Numbers, source: str) -> np.ndarray:
    """The label values; missing labels, non-0/1 ones for a binary task or negative ones for a
    ranking task are an error naming the rows."""
    if numbers.missing.any():
        rows = np.flatnonzero(numbers.missing)
        raise TableDataError(
            f"{source}: label column {spec.label!r} must have a value in every row. "
            f"Received {describe_rows(spec.label, rows, [None] * len(rows))}"
        )
    if spec.task == "binary":
        try:
            return validate_binary_labels(numbers.values)
        except ValueError as error:
            raise TableDataError(f'{source}: label column {spec.label!r} (task = "binary"): {error}') from None
    if spec.task == "ranking" and (numbers.values < 0).any():  # −1 marks a padded slot in a list
        rows = np.flatnonzero(numbers.values < 0)
        raise TableDataError(
            f'{source}: label column {spec.label!r} (task = "ranking") must hold graded relevances ≥ 0. '
            f"Received {describe_rows(spec.label, rows, numbers.values[rows])}"
        )
    return numbers.values


def checked_groups(name: str, categories: Categories, source: str) -> np.ndarray:
    """The group values; a missing group is an error naming the rows."""
    if categories.missing.any():
        rows = np.flatnonzero(categories.missing)
        raise TableDataError(
            f"{source}: group column {name!r} must have a value in every row. "
            f"Received {describe_rows(name, rows, [None] * len(rows))}"
        )
    return categories.values


def fit_and_encode(
    spec: FeatureSpec,
    data: Any,
    rows: np.ndarray | None = None,
    *,
    source: str | None = None,
    order: np.ndarray | None = None,
) -> tuple[TableEncoder, EncodedRows]:
    """Fit a :class:`TableEncoder` on `rows` of `data` and encode all of `data`.

    The table is read twice, slice by slice (`TableSlices`): once to check every cell
    and count the fit rows' vocabularies and statistics, once to encode each slice
    straight into its place among the encoded rows. So memory holds the encoded rows and
    one slice's parsed columns beside the table (a Parquet file's `TableSlices` reads
    it from the file on each pass, so not even the table).

    Args:
        spec: the feature spec.
        data: a `pyarrow.Table`, pandas DataFrame, mapping of columns or `TableSlices`;
            it must hold the label column (and the group column if the spec names one).
        rows: 1-D int array of the training rows (None: all rows).
        source: the table's name in messages.
        order: the encoded rows' order, a permutation of `0 … n − 1`: encoded row `i`
            is the table's row `order[i]` (None: the table's order). A caller that
            trains on some rows in a shuffled order and validates on the others slices
            the result instead of copying rows out of it.

    Returns:
        The encoder and every row of `data` encoded, labels included.

    Raises:
        TableDataError: as :meth:`TableEncoder.encode` (naming rows by their place in
            `data`), or if a numeric column has no present value among `rows`.
        ValueError: if `rows` is not a 1-D integer array within the table, or `order`
            not a permutation of its rows.

    Example:
        >>> from dcnrank.data.spec.feature_spec import FeatureSpec, MultiHotColumn
        >>> spec = FeatureSpec((MultiHotColumn("g"),), label="y", task="binary")
        >>> encoder, encoded = fit_and_encode(spec, {"g": ["a|b", "b", None], "y": [1, 0, 0]}, rows=[0, 2])
        >>> encoded.features.multi_hot[0].tolist(), encoded.labels.tolist()
        ([[1, 2], [2, -1], [-1, -1]], [1.0, 0.0, 0.0])
        >>> fit_and_encode(spec, {"g": ["a|b", "b", None], "y": [1, 0, 0]}, order=[2, 0, 1])[1].labels.tolist()
        [0.0, 1.0, 0.0]
    """
    slices = data if isinstance(data, TableSlices) else TableSlices.read(as_arrow_table(data))
    source = source if source is not None else (slices.name if isinstance(data, TableSlices) else source_name(data))
    spec.check_columns(slices.column_names, source, need_label=True)
    n = slices.num_rows
    chosen = np.zeros(n, dtype=bool)
    chosen[np.arange(n) if rows is None else _row_positions(rows, n, "rows")] = True
    place = None  # where each table row goes among the encoded rows
    if order is not None:
        wanted = _row_positions(order, n, "order")
        place = np.full(n, -1, dtype=np.int64)
        place[wanted] = np.arange(len(wanted))
        if len(wanted) != n or (place < 0).any():
            raise ValueError(f"`order` must be a permutation of the rows 0..{n - 1}. Received: {order!r:.200}")
    statistics = TableStatistics(spec)
    for start, rows_in, parsed in prefetched(_parsed_slices(spec, slices, source)):
        with rows_from(start):
            statistics.add(parsed, chosen[start : start + rows_in], source)
    encoder = TableEncoder.from_statistics(statistics, source)
    del statistics  # every distinct value's count (millions of strings for a click log), no longer needed
    encoded: EncodedRows | None = None
    for start, rows_in, parsed in prefetched(_parsed_slices(spec, slices, source)):
        with rows_from(start):
            rows_encoded = encoder._encode(parsed, rows_in, source, with_label=True)
        del parsed
        if place is None and rows_in == n:  # one slice, in the table's order
            return encoder, rows_encoded
        encoded = rows_encoded.allocate(n) if encoded is None else encoded
        stop = start + rows_in
        at = torch.arange(start, stop) if place is None else torch.from_numpy(place[start:stop])
        encoded = encoded.put(at, rows_encoded)
    return encoder, cast(EncodedRows, encoded)


def _parsed_slices(spec: FeatureSpec, slices: TableSlices, source: str) -> Iterator[tuple[int, int, dict[str, Parsed]]]:
    """`(first row, rows, parsed columns)` of each slice (`prefetched` parses the next one while
    the caller counts or encodes this one)."""
    for start, part in slices:
        with rows_from(start):
            yield start, part.num_rows, parse_columns(spec, part, source, with_label=True)


def _row_positions(rows: Any, n: int, argument: str) -> np.ndarray:
    """`rows` as a 1-D integer array of positions in `0 … n − 1`, else a ValueError naming `argument`."""
    selected = np.asarray(rows)
    if (
        selected.ndim != 1
        or not np.issubdtype(selected.dtype, np.integer)
        or (selected.size and (selected.min() < 0 or selected.max() >= n))
    ):
        raise ValueError(f"`{argument}` must be a 1-D array of row positions in 0..{n - 1}. Received: {rows!r:.200}")
    return selected
