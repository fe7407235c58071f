"""`TableStatistics`: what a `TableEncoder` is fitted from, gathered from a table in one
pass, chunk by chunk, in memory that grows with the distinct values and never with the rows.

Per vocabulary column it counts every value (or multi-hot item) of the training rows;
per numeric column it keeps the count, mean and sum of squared deviations of the present
training values (after `log1p` when the spec asks), merged across chunks with Chan et
al.'s pairwise update, so one chunk gives exactly ``np.mean`` and ``np.std``.
A table held in memory is one chunk; a file read in record batches is many.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from dcnrank.data.encoding.table_columns import Categories, Items, Numbers
from dcnrank.data.encoding.table_error import TableDataError
from dcnrank.data.encoding.vocabulary import TEXT, Vocabulary, is_text
from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec, MultiHotColumn, NumericColumn
from dcnrank.row_messages import describe_rows

__all__ = ["LabelRange", "Moments", "TableStatistics", "ValueCounts", "log1p_values"]


@dataclass
class Moments:
    """Count, mean and sum of squared deviations (`m2`) of a stream of numbers.

    Example:
        >>> moments = Moments()
        >>> moments.add(np.array([1.0, 2.0])); moments.add(np.array([3.0, 4.0]))
        >>> moments.count, moments.mean, round(moments.std, 6)
        (4, 2.5, 1.118034)
    """

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, values: np.ndarray) -> None:
        """Merge in `values` (1-D float)."""
        n = int(values.size)
        if n == 0:
            return
        mean = float(values.mean())
        m2 = float(np.square(values - mean).sum())
        total = self.count + n
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.count * n / total
        self.mean += delta * n / total
        self.count = total

    @property
    def std(self) -> float:
        """The population standard deviation (`np.std`'s), 0 for fewer than two values."""
        return math.sqrt(self.m2 / self.count) if self.count else 0.0


@dataclass
class LabelRange:
    """Count, sum, smallest and largest of the training labels, merged chunk by chunk.

    Example:
        >>> labels = LabelRange()
        >>> labels.add(np.array([4.0, 1.0])); labels.add(np.array([2.0])); labels.add(np.array([]))
        >>> labels.mean, labels.low, labels.high
        (2.3333333333333335, 1.0, 4.0)
    """

    count: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf

    def add(self, values: np.ndarray) -> None:
        """Merge in `values` (1-D float)."""
        if values.size == 0:
            return
        self.count += int(values.size)
        self.total += float(values.sum())
        self.low = min(self.low, float(values.min()))
        self.high = max(self.high, float(values.max()))

    @property
    def mean(self) -> float:
        """The mean label (NaN before any)."""
        return self.total / self.count if self.count else math.nan


class ValueCounts:
    """How often each distinct value (int or str) occurred; merged chunk by chunk.

    Ints are merged as sorted arrays; strings are counted in a dict, so that a chunk
    costs time in proportion to its own distinct values and memory grows with the
    strings' own lengths (a fixed-width ``<U`` array would make every value as wide as
    the longest one).

    Example:
        >>> counts = ValueCounts()
        >>> counts.add(np.array(["b", "a", "b"])); counts.add(np.array(["c", "b"]))
        >>> counts.values.tolist(), counts.counts.tolist()
        (['a', 'b', 'c'], [1, 3, 1])
    """

    def __init__(self) -> None:
        self._ints = np.zeros(0, dtype=np.int64)
        self._int_counts = np.zeros(0, dtype=np.int64)
        self._text: dict[str, int] = {}

    @property
    def values(self) -> np.ndarray:
        """The distinct values, sorted (as ``np.unique`` sorts them)."""
        if self._text:
            return _text_array(sorted(self._text))
        return self._ints

    @property
    def counts(self) -> np.ndarray:
        """How often each of :attr:`values` occurred."""
        if self._text:
            return np.array([self._text[v] for v in sorted(self._text)], dtype=np.int64)
        return self._int_counts

    def add(self, values: np.ndarray) -> None:
        """Count `values` (1-D int64 or text) in. Raises `TypeError` on mixing ints and strings."""
        if values.size == 0:
            return
        if is_text(values):
            seen = Counter(values.tolist())
            self.add_counts(_text_array(list(seen)), np.fromiter(seen.values(), dtype=np.int64, count=len(seen)))
            return
        self.add_counts(*np.unique(values, return_counts=True))

    def add_counts(self, uniques: np.ndarray, counts: np.ndarray) -> None:
        """Count in distinct `uniques` (ints: sorted) seen `counts` times each.

        Raises:
            TypeError: if `uniques` is text and earlier values were ints, or the reverse.
        """
        if uniques.size == 0:
            return
        text = is_text(uniques)
        if (text and self._ints.size) or (not text and self._text):
            raise TypeError("ints and strings mixed")
        if text:
            table = self._text
            for value, count in zip(uniques.tolist(), counts.tolist(), strict=True):
                table[value] = table.get(value, 0) + count
            return
        if self._ints.size == 0:
            self._ints, self._int_counts = uniques.astype(np.int64), counts.astype(np.int64)
            return
        merged, inverse = np.unique(np.concatenate([self._ints, uniques]), return_inverse=True)
        weights = np.concatenate([self._int_counts, counts])
        self._int_counts = np.bincount(inverse, weights=weights, minlength=merged.size).astype(np.int64)
        self._ints = merged

    def vocabulary(self, min_count: int) -> Vocabulary:
        """The values seen at least `min_count` times, as a vocabulary."""
        if self._text:
            return Vocabulary(_text_array(sorted(v for v, c in self._text.items() if c >= min_count)))
        return Vocabulary(self._ints[self._int_counts >= min_count])


def _text_array(strings: list[str]) -> np.ndarray:
    array = np.empty(len(strings), dtype=TEXT)
    array[:] = strings
    return array


def log1p_values(column: NumericColumn, numbers: Numbers, source: str) -> np.ndarray:
    """The column's values after `log1p` when the spec asks (missing ones as 0).

    Raises:
        TableDataError: on a present value ≤ −1 in a `log1p` column, naming the rows.
    """
    if not column.log1p:
        return numbers.values
    invalid = ~numbers.missing & (numbers.values <= -1.0)
    if invalid.any():
        rows = np.flatnonzero(invalid)
        raise TableDataError(
            f"{source}: column {column.name!r} has log1p = true, so its values must be > -1. "
            f"Received {describe_rows(column.name, rows, numbers.values[rows])}"
        )
    return np.log1p(np.where(numbers.missing, 0.0, numbers.values))


class TableStatistics:
    """Value counts and numeric moments of a spec's columns over the training rows of many chunks.

    Args:
        spec: the feature spec.

    Example:
        >>> from dcnrank.data.spec.feature_spec import FeatureSpec, NumericColumn, CategoricalColumn
        >>> spec = FeatureSpec((NumericColumn("x"), CategoricalColumn("c")), label="y", task="regression")
        >>> stats = TableStatistics(spec)
        >>> mask = np.array([True, True])
        >>> stats.add({"x": Numbers(np.array([1.0, 3.0]), ~mask), "c": Categories(np.array(["a", "b"]), ~mask)},
        ...           mask, "data")
        >>> stats.numeric("data"), stats.rows
        ({'x': (2.0, 1.0)}, 2)
    """

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec
        self.rows = 0
        self._counts: dict[str, ValueCounts] = {}
        self._moments: dict[str, Moments] = {}
        for column in spec.columns:
            if isinstance(column, NumericColumn):
                self._moments[column.name] = Moments()
            elif isinstance(column, MultiHotColumn) or column.hash_buckets is None:
                self._counts[column.name] = ValueCounts()

    def add(self, parsed: Mapping[str, Numbers | Categories | Items], chosen: np.ndarray, source: str) -> None:
        """Count in the rows of one parsed chunk where `chosen` (bool, one per row) is True.

        Raises:
            TableDataError: if a `log1p` value is ≤ −1, or a column holds ints in one
                chunk and text in another.
        """
        self.rows += int(chosen.sum())
        for column in self.spec.columns:
            values = parsed[column.name]
            if isinstance(column, NumericColumn) and isinstance(values, Numbers):
                transformed = log1p_values(column, values, source)
                self._moments[column.name].add(transformed[chosen & ~values.missing])
                continue
            counts = self._counts.get(column.name)
            if counts is None:  # a numeric or hashed column keeps no vocabulary
                continue
            try:
                if isinstance(values, Categories) and values.uniques is not None and values.codes is not None:
                    # text: count codes, then each distinct value once
                    seen = np.bincount(values.codes[chosen & ~values.missing], minlength=len(values.uniques))
                    kept = np.flatnonzero(seen)
                    text = True
                    counts.add_counts(values.uniques[kept], seen[kept])
                elif isinstance(values, Categories):
                    text = is_text(values.values)
                    counts.add(values.values[chosen & ~values.missing])
                elif isinstance(values, Items):
                    text = is_text(values.values)
                    counts.add(values.values[chosen[values.rows]])
            except TypeError:
                raise TableDataError(
                    f"{source}: column {column.name!r} holds {'text' if text else 'integers'} "
                    "here but the other kind in earlier rows; a categorical column must hold one kind"
                ) from None

    def vocabularies(self) -> dict[str, Vocabulary]:
        """Per vocabulary column, the values seen in at least its `min_count` training rows."""
        return {
            column.name: self._counts[column.name].vocabulary(column.min_count)
            for column in self.spec.columns
            if column.name in self._counts and isinstance(column, CategoricalColumn | MultiHotColumn)
        }

    def numeric(self, source: str) -> dict[str, tuple[float, float]]:
        """Per numeric column, `(mean, std)` of its present training values (std 1 if constant).

        Raises:
            TableDataError: if a numeric column had no present value in the training rows.
        """
        out = {}
        for name, moments in self._moments.items():
            if moments.count == 0:
                raise TableDataError(
                    f"{source}: numeric column {name!r} has no value in the {self.rows} training rows, "
                    "so it cannot be standardised"
                )
            std = moments.std
            out[name] = (moments.mean, std if std > 0 and math.isfinite(std) else 1.0)
        return out
