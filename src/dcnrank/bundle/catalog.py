"""`Catalog`: the users and items a table model was fitted on, with the raw values of the
columns that describe them, and which items each user interacted with. Stored in a table
bundle (`catalog.json`, `catalog.safetensors`); what `recommend` and `/rank` rank from."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from dcnrank.data.encoding.interactions import Interactions
from dcnrank.data.encoding.table_columns import read_categories, read_items, read_numbers
from dcnrank.data.encoding.table_encoder import TableEncoder
from dcnrank.data.sources.table_readers import as_arrow_table
from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec, NumericColumn
from dcnrank.limits import MAX_STRING_CHARS

__all__ = ["Catalog", "CatalogTensorError"]

_INT64 = (-(2**63), 2**63 - 1)
# How much of a value a message echoes: a hostile catalogue may hold a megabyte in a cell.
_ECHO = 80

Value = Any  # a raw cell: int, float, str, a list of ints or strings, or None


class CatalogTensorError(ValueError):
    """The catalogue's user -> item pairs (`catalog.safetensors`) are malformed."""


@dataclass(frozen=True, eq=False)
class Catalog:
    """The users and items of the fit rows, one entry each, in order of first appearance.

    Each side is a mapping column -> one raw value per entry: first its role column
    (the spec's `user` or `item`, whose values are distinct and never missing), then
    the spec's `user_columns` or `item_columns`, as the entry's first fit row holds them
    (categorical: an int or a str; numeric: a float; multi-hot: the list of its items;
    None where missing). `interactions` holds, per user row of the encoder, the item rows
    the user interacted with in the fit rows (OOV rows never stored).

    Args:
        user: the spec's user column.
        item: the spec's item column.
        users: column -> values, `user` first, then the spec's `user_columns`.
        items: column -> values, `item` first, then the spec's `item_columns`.
        interactions: user rows -> item rows of the fit rows (CSR).

    Raises:
        ValueError: if a side does not start with its role column, its columns differ
            in length, or its ids repeat or are missing.

    Example:
        >>> from dcnrank.data.spec.feature_spec import CategoricalColumn, NumericColumn
        >>> spec = FeatureSpec((CategoricalColumn("u"), CategoricalColumn("i"), NumericColumn("year")),
        ...                    label="y", task="binary", user="u", item="i", item_columns=("year",))
        >>> fit = {"u": [7, 7, 8], "i": ["a", "b", "a"], "year": [1990.0, 2001.0, 1990.0], "y": [1, 0, 1]}
        >>> catalog = Catalog.build(spec, TableEncoder.fit(spec, fit), fit)
        >>> catalog.items, catalog.users
        ({'i': ['a', 'b'], 'year': [1990.0, 2001.0]}, {'u': [7, 8]})
        >>> catalog.interactions.indptr.tolist(), catalog.interactions.members.tolist()
        ([0, 0, 2, 3], [1, 2, 1])
    """

    user: str
    item: str
    users: dict[str, list[Value]]
    items: dict[str, list[Value]]
    interactions: Interactions

    def __post_init__(self) -> None:
        for side, role, columns in (("users", self.user, self.users), ("items", self.item, self.items)):
            if not isinstance(columns, Mapping) or not columns or next(iter(columns)) != role:
                raise ValueError(
                    f"`{side}` must map the column {role!r} first to its values. Received: {columns!r:.200}"
                )
            lengths = {name: len(values) for name, values in columns.items()}
            if len(set(lengths.values())) != 1:
                raise ValueError(f"every column of `{side}` must hold one value per entry. Received lengths: {lengths}")
            ids = columns[role]
            if any(value is None for value in ids) or len(set(ids)) != len(ids):
                raise ValueError(f"`{side}[{role!r}]` must hold distinct, present ids. Received: {ids!r:.200}")
        if not isinstance(self.interactions, Interactions):
            raise ValueError(f"`interactions` must be an Interactions. Received: {type(self.interactions).__name__}")

    @classmethod
    def build(
        cls,
        spec: FeatureSpec,
        encoder: TableEncoder,
        fit_table: Any,
        interactions: Interactions | None = None,
    ) -> Catalog:
        """Collect the catalogue of the fit rows.

        Args:
            spec: the feature spec; it must name a `user` and an `item`.
            encoder: the encoder fitted on these rows (its table sizes size the CSR).
            fit_table: the fit rows: a `pyarrow.Table`, DataFrame or column mapping with
                the spec's input columns.
            interactions: the user -> item pairs of the fit rows, as the model's histories
                hold them; None computes them from `encoder.encode(fit_table)`.

        Returns:
            The catalogue.

        Raises:
            ValueError: if the spec lacks the user or item role, or `interactions` does not
                match the encoder's user and item table sizes.
            TableDataError: if the table lacks a column or a cell does not fit the spec.
        """
        if spec.user is None or spec.item is None:
            raise ValueError(
                "a catalogue needs a spec naming a `user` and an `item` column. "
                f"Received: user={spec.user!r}, item={spec.item!r}"
            )
        table = as_arrow_table(fit_table)
        sizes = encoder.table_sizes
        if interactions is None:
            categorical = encoder.encode(table, source="fit rows").features.categorical
            positions = spec.role_positions()
            interactions = Interactions.from_pairs(
                categorical[:, positions["user"]], categorical[:, positions["item"]], sizes[spec.user], sizes[spec.item]
            )
        if (interactions.num_owners, interactions.num_members) != (sizes[spec.user], sizes[spec.item]):
            raise ValueError(
                f"`interactions` must pair {sizes[spec.user]} user rows with {sizes[spec.item]} item rows, as the "
                f"encoder's table sizes. Received: {interactions.num_owners} and {interactions.num_members}"
            )
        return cls(
            spec.user,
            spec.item,
            _side(spec, table, spec.user, spec.user_columns),
            _side(spec, table, spec.item, spec.item_columns),
            interactions,
        )

    @property
    def num_users(self) -> int:
        return len(self.users[self.user])

    @property
    def num_items(self) -> int:
        return len(self.items[self.item])

    @cached_property
    def _user_positions(self) -> dict[Value, int]:
        return {value: i for i, value in enumerate(self.users[self.user])}

    @cached_property
    def _item_positions(self) -> dict[Value, int]:
        return {value: i for i, value in enumerate(self.items[self.item])}

    def user_position(self, user_id: Value) -> int | None:
        """The user's entry, or None for a user not in the fit rows."""
        return self._user_positions.get(user_id) if _hashable(user_id) else None

    def item_position(self, item_id: Value) -> int | None:
        """The item's entry, or None for an item not in the fit rows."""
        return self._item_positions.get(item_id) if _hashable(item_id) else None

    @cached_property
    def item_table(self) -> pa.Table:
        """The items as an Arrow table (one row per item), for gathering candidate rows."""
        return pa.table({name: _arrow(values) for name, values in self.items.items()})

    def to_dict(self) -> dict[str, Any]:
        """What `catalog.json` holds: ``{"user", "item", "users": {...}, "items": {...}}``."""
        return {"user": self.user, "item": self.item, "users": self.users, "items": self.items}

    def tensors(self) -> dict[str, torch.Tensor]:
        """What `catalog.safetensors` holds: the CSR's `indptr` (int64) and `members` (int32)."""
        return {"indptr": self.interactions.indptr.contiguous(), "members": self.interactions.members.contiguous()}

    @classmethod
    def from_parts(
        cls, raw: Any, tensors: Mapping[str, torch.Tensor], spec: FeatureSpec, table_sizes: Mapping[str, int]
    ) -> Catalog:
        """Rebuild and check a catalogue from :meth:`to_dict` and :meth:`tensors` (a bundle's files).

        Args:
            raw: the parsed `catalog.json`.
            tensors: the tensors of `catalog.safetensors`.
            spec: the bundle's spec (the columns each side must hold, their types).
            table_sizes: the encoder's table sizes (the CSR's shape).

        Raises:
            ValueError: naming the part and echoing the value: a missing or extra key, a
                side whose columns are not the spec's, columns of different lengths, a
                repeated, missing or ill-typed id, a value of the wrong kind for its column.
            CatalogTensorError: (a ValueError) for a CSR of the wrong tensors, dtype,
                shape or range, or unsorted.
        """
        if not isinstance(raw, dict) or set(raw) != {"user", "item", "users", "items"}:
            keys = list(raw) if isinstance(raw, dict) else raw
            raise ValueError(f"must be an object with the keys user, item, users, items. Received: {keys!r:.200}")
        if (raw["user"], raw["item"]) != (spec.user, spec.item):
            raise ValueError(
                f"names user={raw['user']!r:.{_ECHO}}, item={raw['item']!r:.{_ECHO}}, but the spec's roles are "
                f"user={spec.user!r}, item={spec.item!r}"
            )
        by_name = {column.name: column for column in spec.columns}
        sides = {}
        for side, role, described in (("users", spec.user, spec.user_columns), ("items", spec.item, spec.item_columns)):
            columns = raw[side]
            wanted = [role, *described]
            if not isinstance(columns, dict) or list(columns) != wanted:
                names = list(columns) if isinstance(columns, dict) else columns
                raise ValueError(f"`{side}` must map the columns {wanted} in order. Received: {names!r:.200}")
            for name, values in columns.items():
                _check_values(f"{side}.{name}", values, by_name[name], is_id=name == role)
            sides[side] = columns
        interactions = _interactions(tensors, table_sizes[str(spec.user)], table_sizes[str(spec.item)])
        return cls(str(spec.user), str(spec.item), sides["users"], sides["items"], interactions)


def _side(spec: FeatureSpec, table: pa.Table, role: str, described: tuple[str, ...]) -> dict[str, list[Value]]:
    """One side of the catalogue: the distinct present ids of `role` in order of first
    appearance, and the values of `described` on each id's first row."""
    ids = read_categories(table, role, "fit rows")
    present = np.flatnonzero(~ids.missing)
    _, first = np.unique(ids.values[present], return_index=True)
    rows = np.sort(present[first])  # each id's first row, in table order
    by_name = {column.name: column for column in spec.columns}
    side: dict[str, list[Value]] = {role: ids.values[rows].tolist()}
    for name in described:
        side[name] = _column_values(table, by_name[name], rows)
    return side


def _column_values(table: pa.Table, column: Any, rows: np.ndarray) -> list[Value]:
    """The raw values of `column` on `rows`: numbers, categories, or item lists; None where missing."""
    if isinstance(column, NumericColumn):
        numbers = read_numbers(table, column.name, "fit rows")
        present = zip(numbers.values[rows].tolist(), numbers.missing[rows].tolist(), strict=True)
        return [None if gone else value for value, gone in present]
    if isinstance(column, CategoricalColumn):
        categories = read_categories(table, column.name, "fit rows")
        values = categories.values[rows].tolist()
        return [None if gone else value for value, gone in zip(values, categories.missing[rows].tolist(), strict=True)]
    items = read_items(table, column.name, column.separator, "fit rows")
    starts = np.searchsorted(items.rows, rows, side="left")
    ends = np.searchsorted(items.rows, rows, side="right")
    return [items.values[start:end].tolist() for start, end in zip(starts.tolist(), ends.tolist(), strict=True)]


def _hashable(value: Any) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def _arrow(values: list[Value]) -> pa.Array:
    """A catalogue column as Arrow (lists of items as list arrays; all-missing as nulls)."""
    return pa.array(values)


def _is_id(value: Any) -> bool:
    """An int64 int or a str of at most MAX_STRING_CHARS characters (a category value)."""
    if isinstance(value, str):
        return len(value) <= MAX_STRING_CHARS
    return isinstance(value, int) and not isinstance(value, bool) and _INT64[0] <= value <= _INT64[1]


_FINE = object()  # "no bad value found" (None may itself be the bad value)


def _first_bad(values: list[Any], fits: Any) -> Any:
    return next((value for value in values if not fits(value)), _FINE)


def _check_values(where: str, values: Any, column: Any, *, is_id: bool) -> None:
    """Raise unless `values` is a list of raw values fit for `column`: ids (distinct, present,
    one kind), categories (one kind, or None), finite numbers (or None), or item lists."""
    if not isinstance(values, list):
        raise ValueError(f"`{where}` must be a list of values. Received: {values!r:.{_ECHO}}")
    if is_id or isinstance(column, CategoricalColumn):
        what = f"{'ids' if is_id else 'ints, strings or null'} (strings of at most {MAX_STRING_CHARS} characters)"
        bad = _first_bad(values, lambda v: _is_id(v) or (v is None and not is_id))
        kinds = {type(v).__name__ for v in values if v is not None}
    elif isinstance(column, NumericColumn):
        what = "finite numbers or null"
        bad = _first_bad(
            values, lambda v: v is None or (isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v))
        )
        kinds = set()
    else:
        what = "lists of ints or strings"
        bad = _first_bad(values, lambda v: isinstance(v, list) and all(_is_id(item) for item in v))
        kinds = {type(item).__name__ for v in values if isinstance(v, list) for item in v}
    if bad is not _FINE:
        raise ValueError(f"`{where}` must hold {what}. Received: {bad!r:.{_ECHO}}")
    if len(kinds) > 1:
        raise ValueError(
            f"`{where}` must hold values of one kind, ints or strings. Received: {', '.join(sorted(kinds))}"
        )
    if is_id and len(set(values)) != len(values):
        raise ValueError(f"`{where}` must hold distinct ids. Received: {len(values) - len(set(values))} repeated")


def _interactions(tensors: Mapping[str, torch.Tensor], num_users: int, num_items: int) -> Interactions:
    """The CSR of `catalog.safetensors`, checked: shapes, dtypes, ranges, each user's items ascending."""
    if set(tensors) != {"indptr", "members"}:
        raise CatalogTensorError(f"the tensors must be exactly indptr and members. Received: {sorted(tensors)!r:.200}")
    indptr, members = tensors["indptr"], tensors["members"]
    if indptr.dim() != 1 or len(indptr) != num_users + 1:
        raise CatalogTensorError(
            f"`indptr` must have shape ({num_users + 1},), one more than the user column's {num_users} rows. "
            f"Received: shape={tuple(indptr.shape)}"
        )
    try:
        interactions = Interactions(indptr, members, num_items)
    except ValueError as error:
        raise CatalogTensorError(str(error)) from None
    if len(members) > 1:
        owners, _ = interactions.pairs()
        steps = members[1:].long() - members[:-1].long()
        same_owner = owners[1:] == owners[:-1]
        if bool((same_owner & (steps <= 0)).any()):
            raise CatalogTensorError("`members` must list each user's items in ascending order, each once")
    return interactions
