"""Arrow columns to numpy arrays as a feature spec types them, with errors naming the cell.

Three shapes of column come out: numbers (float64 values and a missing mask),
categories (int64 or str values and a missing mask) and item lists (the items of every
row, flattened, with the row each came from). Every conversion checks the whole column
and reports the offending rows by 0-based position and value (``I1[4]='abc'``).

Text values are object arrays of Python strings (`dcnrank.data.encoding.vocabulary.TEXT`), in
which each value costs its own length, never fixed-width ``<U`` arrays (as wide as the
longest value); and a category value (categorical, multi-hot item or group) may be at
most :data:`dcnrank.limits.MAX_STRING_CHARS` characters long.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dcnrank.data.encoding.table_error import TableDataError
from dcnrank.data.encoding.vocabulary import TEXT, is_text
from dcnrank.data.sources.table_readers import check_unique_columns
from dcnrank.limits import MAX_STRING_CHARS
from dcnrank.row_messages import describe_rows

__all__ = ["Categories", "Items", "Numbers", "categories_as", "read_categories", "read_items", "read_numbers"]


@dataclass(frozen=True, eq=False)
class Numbers:
    """A numeric column: `values` float64 `(N,)` (0 where missing) and `missing` bool `(N,)`."""

    values: np.ndarray
    missing: np.ndarray


@dataclass(frozen=True, eq=False)
class Categories:
    """A categorical column: `values` int64 or text `(N,)` (0 or "" where missing), `missing` bool `(N,)`.

    Text columns also keep their factorisation, `values == uniques[codes]`, so that
    vocabulary lookups, hashing and counting work on the distinct values only (`uniques`
    may hold a value twice when it comes from a file's dictionary).
    """

    values: np.ndarray
    missing: np.ndarray
    uniques: np.ndarray | None = None
    codes: np.ndarray | None = None

    @property
    def kind(self) -> str:
        """``"str"`` or ``"int"``, as `Vocabulary.kind` names them."""
        return "str" if is_text(self.values) else "int"


@dataclass(frozen=True, eq=False)
class Items:
    """A multi-hot column: every present item, flattened (`values`, int64 or str), the
    0-based row of each (`rows`, ascending) and the table's row count `num_rows`."""

    values: np.ndarray
    rows: np.ndarray
    num_rows: int


def _column(table: pa.Table, name: str, source: str, decode: bool = True) -> pa.Array:
    """Column `name` as one array; a dictionary-encoded one decoded unless `decode` is False."""
    if len(table.schema.get_all_field_indices(name)) > 1:
        check_unique_columns(table.column_names, [name], source)
    array = table.column(name).combine_chunks()
    if decode and pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    return array


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _is_number(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)


def _parse_text(array: pa.Array, to: pa.DataType, parse: type, source: str, name: str, what: str) -> pa.Array:
    """Cast text to numbers with Arrow; where Arrow refuses, parse in Python and name the bad cells."""
    trimmed = pc.utf8_trim_whitespace(array)
    try:
        return pc.cast(trimmed, to)
    except pa.ArrowInvalid:
        pass
    texts = trimmed.to_pylist()
    parsed: list = []
    bad: list[int] = []
    for row, text in enumerate(texts):
        if text is None:
            parsed.append(None)
            continue
        try:
            parsed.append(parse(text))
        except ValueError:
            bad.append(row)
            parsed.append(None)
    if bad:
        raise TableDataError(
            f"{source}: column {name!r} must hold {what}. Received {describe_rows(name, bad, [texts[r] for r in bad])}"
        )
    return pa.array(parsed, type=to)


def read_numbers(table: pa.Table, name: str, source: str) -> Numbers:
    """Column `name` as float64 numbers; null, empty and NaN cells are missing.

    Args:
        table: the table.
        name: the column.
        source: the table's name for messages.

    Returns:
        The values (0 where missing) and the missing mask.

    Raises:
        TableDataError: if the column holds text that is not a number, infinite
            values, or is of a non-numeric type (a list, a date…).

    Example:
        >>> numbers = read_numbers(pa.table({"x": ["1.5", None, " 2 "]}), "x", "data")
        >>> numbers.values.tolist(), numbers.missing.tolist()
        ([1.5, 0.0, 2.0], [False, True, False])
    """
    array = _column(table, name, source)
    if _is_text(array.type):
        array = _parse_text(array, pa.float64(), float, source, name, "numbers")
    elif pa.types.is_boolean(array.type) or _is_number(array.type) or pa.types.is_null(array.type):
        array = pc.cast(array, pa.float64())
    else:
        raise TableDataError(f"{source}: column {name!r} must hold numbers. Received: type {array.type}")
    values = array.to_numpy(zero_copy_only=False).astype(np.float64, copy=True)  # nulls -> NaN
    infinite = np.isinf(values)
    if infinite.any():
        rows = np.flatnonzero(infinite)
        raise TableDataError(
            f"{source}: column {name!r} must hold finite numbers. Received {describe_rows(name, rows, values[rows])}"
        )
    missing = np.isnan(values)
    values[missing] = 0.0
    return Numbers(values, missing)


def _int_values(array: pa.Array, source: str, name: str) -> pa.Array:
    """Integer-valued floats as int64; a fraction is an error naming its rows."""
    values = array.to_numpy(zero_copy_only=False).astype(np.float64)
    fractional = ~np.isnan(values) & (values != np.round(values))
    if fractional.any():
        rows = np.flatnonzero(fractional)
        raise TableDataError(
            f"{source}: column {name!r} is categorical and must hold ints or strings, not fractions. "
            f"Received {describe_rows(name, rows, values[rows])}"
        )
    return pa.array(np.where(np.isnan(values), 0, values).astype(np.int64), mask=np.isnan(values))


def _to_categories(array: pa.Array, source: str, name: str, rows: np.ndarray | None = None) -> Categories:
    """`array`'s values as categories; `rows` (for list items) is the table row of each value."""
    if pa.types.is_dictionary(array.type):
        if _is_text(array.type.value_type):  # already factorised (a Parquet file's dictionary): keep it
            return _dictionary_categories(array, source, name, rows)
        array = array.dictionary_decode()
    if pa.types.is_null(array.type):  # every cell missing (an all-empty DataFrame column)
        array = pc.cast(array, pa.string())
    if _is_text(array.type):
        missing = array.is_null().to_numpy(zero_copy_only=False) | (
            pc.equal(array, "").fill_null(False).to_numpy(zero_copy_only=False)
        )
        # Through Arrow's dictionary: only the distinct strings become numpy text, then one gather.
        encoded = pc.dictionary_encode(array.fill_null(""))
        codes = encoded.indices.to_numpy(zero_copy_only=False)  # int32
        _check_lengths(encoded.dictionary, codes, rows, source, name)
        uniques = encoded.dictionary.to_numpy(zero_copy_only=False).astype(TEXT)
        if uniques.size == 0:
            return Categories(np.full(len(array), "", dtype=TEXT), missing)
        return Categories(uniques[codes], missing, uniques, codes)
    if pa.types.is_floating(array.type):
        array = _int_values(array, source, name)
    elif pa.types.is_boolean(array.type) or pa.types.is_decimal(array.type):
        array = _int_values(pc.cast(array, pa.float64()), source, name)
    elif not pa.types.is_integer(array.type):
        raise TableDataError(
            f"{source}: column {name!r} is categorical and must hold ints or strings. Received: type {array.type}"
        )
    try:
        array = pc.cast(array, pa.int64())
    except pa.ArrowInvalid:
        raise TableDataError(f"{source}: column {name!r} holds integers too large for int64") from None
    missing = array.is_null().to_numpy(zero_copy_only=False)
    return Categories(array.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64), missing)


def _dictionary_categories(array: pa.DictionaryArray, source: str, name: str, rows: np.ndarray | None) -> Categories:
    """Text categories from a dictionary array, without hashing its values again. Null cells
    point at an extra "" entry, so `uniques` may hold a value twice (harmless: each code still
    names its value)."""
    dictionary = array.dictionary.fill_null("")
    uniques = pa.concat_arrays([dictionary, pa.array([""], type=dictionary.type)])
    codes = array.indices.fill_null(len(dictionary)).to_numpy(zero_copy_only=False)
    _check_lengths(uniques, codes, rows, source, name)
    empty = pc.equal(uniques, "").to_numpy(zero_copy_only=False)
    texts = uniques.to_numpy(zero_copy_only=False).astype(TEXT)
    return Categories(texts[codes], empty[codes], texts, codes)


def _check_lengths(
    dictionary: pa.Array, codes: np.ndarray, rows: np.ndarray | None, source: str, name: str
) -> None:
    """Refuse text values longer than `MAX_STRING_CHARS`, naming their rows (checked on the distinct values)."""
    lengths = pc.utf8_length(dictionary).to_numpy(zero_copy_only=False)
    too_long = np.flatnonzero(lengths > MAX_STRING_CHARS)
    if too_long.size == 0:
        return
    positions = np.flatnonzero(np.isin(codes, too_long))
    if positions.size == 0:  # a file's dictionary may hold values that no row of this slice has
        return
    values = dictionary.take(pa.array(codes[positions])).to_pylist()
    if rows is not None:  # list items: one entry per row, its first long item
        table_rows, first = np.unique(rows[positions], return_index=True)
        positions, values = table_rows, [values[i] for i in first]
    raise TableDataError(
        f"{source}: column {name!r} holds values longer than {MAX_STRING_CHARS} characters, the most a "
        f"category value may have. Received {describe_rows(name, positions, values)}"
    )


def read_categories(table: pa.Table, name: str, source: str) -> Categories:
    """Column `name` as category values: int64 for integer columns, text for text.

    Null and empty cells are missing. Floats are accepted when every value is whole
    (a pandas int column with gaps is float), so ``3.0`` is the category ``3``. Text
    values longer than :data:`~dcnrank.limits.MAX_STRING_CHARS` characters are refused.

    Args:
        table: the table.
        name: the column.
        source: the table's name for messages.

    Returns:
        The values and the missing mask.

    Raises:
        TableDataError: on fractions, integers beyond int64, text longer than
            `MAX_STRING_CHARS`, a type that is neither numbers nor text, or a table
            with two columns named `name`.

    Example:
        >>> read_categories(pa.table({"c": [3.0, None, 5.0]}), "c", "data").values.tolist()
        [3, 0, 5]
    """
    return _to_categories(_column(table, name, source, decode=False), source, name)


def categories_as(categories: Categories, kind: str, source: str, name: str) -> Categories:
    """The same categories as `kind` (``"int"`` or ``"str"``), the kind a vocabulary holds.

    Ints become their decimal text; text becomes ints where every present value is an
    integer (a model trained on a Parquet int column can score a CSV file).

    Raises:
        TableDataError: if text is not an integer, naming the rows.

    Example:
        >>> categories = Categories(np.array(["7", ""]), np.array([False, True]))
        >>> categories_as(categories, "int", "data", "c").values.tolist()
        [7, 0]
    """
    if kind == categories.kind:
        return categories
    if kind == "str":
        values = pc.cast(pa.array(categories.values), pa.string()).to_numpy(zero_copy_only=False).astype(TEXT)
        values[categories.missing] = ""
        return Categories(values, categories.missing)
    text = pa.array(categories.values.tolist(), type=pa.string(), mask=categories.missing)
    parsed = _parse_text(text, pa.int64(), int, source, name, "integers (this model's vocabulary holds ints)")
    return Categories(parsed.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64), categories.missing)


def read_items(table: pa.Table, name: str, separator: str, source: str) -> Items:
    """The items of a multi-hot column: text cells split on `separator`, or list cells.

    Empty items (``"a||b"``), null items and null cells are dropped, so a row may have
    no items.

    Args:
        table: the table.
        name: the column.
        separator: what separates items in a text cell.
        source: the table's name for messages.

    Returns:
        The flattened items and the row of each.

    Raises:
        TableDataError: if the column is neither text nor lists of ints or strings, an
            item is longer than `MAX_STRING_CHARS` characters, or the table has two
            columns named `name`.

    Example:
        >>> items = read_items(pa.table({"g": ["a|b", None, "c||a"]}), "g", "|", "data")
        >>> items.values.tolist(), items.rows.tolist()
        (['a', 'b', 'c', 'a'], [0, 0, 2, 2])
    """
    array = _column(table, name, source)
    if pa.types.is_null(array.type):  # every cell missing
        array = pc.cast(array, pa.string())
    if _is_text(array.type):
        lists = pc.split_pattern(array, separator)
    elif pa.types.is_list(array.type) or pa.types.is_large_list(array.type):
        lists = array
    else:
        raise TableDataError(
            f"{source}: column {name!r} is multi_hot and must hold text separated by {separator!r} or lists. "
            f"Received: type {array.type}"
        )
    rows = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = pc.list_flatten(lists)
    if pa.types.is_dictionary(flat.type):
        flat = flat.dictionary_decode()
    try:
        items = _to_categories(flat, source, name, rows)
    except TableDataError as error:
        raise TableDataError(f"{error} (in its list items)") from None
    keep = ~items.missing
    return Items(items.values[keep], rows[keep], table.num_rows)
