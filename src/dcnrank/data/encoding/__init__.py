"""Encoding: a `TableEncoder` fitted on the fit rows (vocabularies, feature hashing, numeric
statistics) turns a table into a `TableBatch` of tensors; `Interactions` (CSR) holds who
interacted with what; `TableDataError` names the cells that do not fit the spec."""

from dcnrank.data.encoding.feature_hashing import hash_rows
from dcnrank.data.encoding.interactions import Interactions
from dcnrank.data.encoding.table_batch import PADDING, TableBatch
from dcnrank.data.encoding.table_columns import (
    Categories,
    Items,
    Numbers,
    categories_as,
    read_categories,
    read_items,
    read_numbers,
)
from dcnrank.data.encoding.table_encoder import (
    EncodedRows,
    TableEncoder,
    checked_groups,
    checked_labels,
    fit_and_encode,
    parse_columns,
)
from dcnrank.data.encoding.table_error import TableDataError
from dcnrank.data.encoding.table_statistics import LabelRange, Moments, TableStatistics, ValueCounts, log1p_values
from dcnrank.data.encoding.vocabulary import OOV_INDEX, TEXT, Vocabulary, is_text

__all__ = [
    "OOV_INDEX",
    "PADDING",
    "TEXT",
    "Categories",
    "EncodedRows",
    "Interactions",
    "Items",
    "LabelRange",
    "Moments",
    "Numbers",
    "TableBatch",
    "TableDataError",
    "TableEncoder",
    "TableStatistics",
    "ValueCounts",
    "Vocabulary",
    "categories_as",
    "checked_groups",
    "checked_labels",
    "fit_and_encode",
    "hash_rows",
    "is_text",
    "log1p_values",
    "parse_columns",
    "read_categories",
    "read_items",
    "read_numbers",
]
