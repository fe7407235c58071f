"""`rank_items`: the best catalogue items for one user, scored by a bundle in one
pass. The one ranking core behind `dcnrank recommend` and `POST /rank`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from dcnrank.bundle.bundle import Bundle
from dcnrank.bundle.catalog import Catalog
from dcnrank.data.encoding.table_error import TableDataError
from dcnrank.data.encoding.vocabulary import OOV_INDEX
from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec, MultiHotColumn, NumericColumn
from dcnrank.limits import MAX_STRING_CHARS

__all__ = ["RankedItem", "Ranking", "RankingError", "context_columns", "id_kind", "rank_items"]

_INT64 = (-(2**63), 2**63 - 1)
_ECHO = 100  # how much of a value a message echoes


class RankingError(ValueError):
    """A ranking request this bundle cannot serve, naming the field at fault.

    Args:
        field: where in the request: `"user_id"`, `"user.age"`, `"context.device"`,
            `"candidates[2]"`, `"top"` or `"model"`.
        message: what is wrong, with the received value echoed.

    Example:
        >>> str(RankingError("top", "must be a positive int. Received: top=0"))
        'top: must be a positive int. Received: top=0'
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class RankedItem:
    """One ranked item: its 1-based rank, its score (a probability for a binary task, a
    prediction for regression), and its columns (the item column and the spec's
    `item_columns`, as the catalogue holds them; None for an item not in the catalogue)."""

    rank: int
    score: float
    item: dict[str, Any]


@dataclass(frozen=True)
class Ranking:
    """The best candidates for one user.

    Args:
        user_id: the user's id (the value of the spec's user column), or None.
        candidates: how many items were scored (after leaving out the user's fit items).
        items: the best `top` of them, best first.
        unknown: column -> the given values its vocabulary lacks, scored through the
            out-of-vocabulary row (the user id, candidate items, given column values).
        missing: input columns that no one gave, scored as missing.
        notices: what went through the out-of-vocabulary row or was missing, in words.
    """

    user_id: int | str | None
    candidates: int
    items: list[RankedItem]
    unknown: dict[str, list[Any]]
    missing: list[str]
    notices: list[str]

    def to_dict(self) -> dict[str, Any]:
        """The ranking as JSON-ready values (what `POST /rank` answers, `recommend --json` prints)."""
        return asdict(self)


def context_columns(spec: FeatureSpec) -> tuple[str, ...]:
    """The input columns that describe neither the user nor the item (a request may give them).

    Example:
        >>> spec = FeatureSpec((CategoricalColumn("u"), CategoricalColumn("i"), NumericColumn("hour")),
        ...                    label="y", task="binary", user="u", item="i")
        >>> context_columns(spec)
        ('hour',)
    """
    sides = {spec.user, spec.item, *spec.user_columns, *spec.item_columns}
    return tuple(name for name in spec.input_names if name not in sides)


def id_kind(bundle: Bundle, column: str) -> str | None:
    """``"int"`` or ``"str"``, the kind of value a categorical or multi-hot column's
    vocabulary holds (for a hashed column, the kind of the catalogue's ids when it is
    the user or item column); None when either kind is fine.

    Example:
        >>> from dcnrank.data.encoding.table_encoder import TableEncoder
        >>> from dcnrank.models import DCNConfig
        >>> from dcnrank.models.table_inputs import build_table_dcn
        >>> spec = FeatureSpec((CategoricalColumn("u"), CategoricalColumn("h", hash_buckets=4)), label="y",
        ...                    task="binary")
        >>> encoder = TableEncoder.fit(spec, {"u": [7, 8], "h": ["a", "b"], "y": [0, 1]})
        >>> config = DCNConfig(structure="cross_only", embedding_dim=2)
        >>> bundle = Bundle(build_table_dcn(config, spec, encoder.table_sizes), config, encoder)
        >>> id_kind(bundle, "u"), id_kind(bundle, "h")
        ('int', None)
    """
    vocabulary = bundle.encoder.vocabularies.get(column)
    if vocabulary is not None:
        return vocabulary.kind
    catalog = bundle.catalog
    if catalog is not None and column in (catalog.user, catalog.item):
        ids = catalog.users[column] if column == catalog.user else catalog.items[column]
        if ids:
            return "str" if isinstance(ids[0], str) else "int"
    return None


def rank_items(
    bundle: Bundle,
    user_id: int | str | None,
    *,
    user: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    candidates: Sequence[int | str] | None = None,
    top: int = 10,
) -> Ranking:
    """Score candidate items for one user with a bundle and return the `top` best.

    One row per candidate is built from raw values and encoded with the bundle's encoder
    (the path every table row takes): the item column and the spec's `item_columns` from
    the catalogue; the user column from `user_id`; each of the spec's `user_columns` from
    `user`, else from the catalogue's entry for `user_id`; every other input column
    (context) from `context`. A column no one gives is missing (OOV row for categories,
    the learned default for numbers, no items for multi-hot). The rows go through the
    model in one pass. Without `candidates`, every catalogue item is a candidate except
    those the user interacted with in the fit rows. Ties go to the earlier candidate.

    Args:
        bundle: a bundle with a catalogue (a spec naming `user` and `item`).
        user_id: the user's raw id (int or str, as the user column holds), or None for
            a user described by `user` values only.
        user: values of the spec's `user_columns` (they override the catalogue's).
        context: values of the other input columns.
        candidates: distinct raw item ids to rank. Defaults to the catalogue's items
            the user has not interacted with.
        top: int ≥ 1, how many to return. Defaults to 10.

    Returns:
        The ranking, with the values the model does not know and the columns no one gave.

    Raises:
        RankingError: naming the field: no catalogue in the bundle, a bad `top`, a user
            id or value of the wrong kind, a key that is not a user or context column,
            an empty or repeating candidate list, or a value the encoder refuses.

    Example:
        >>> from dcnrank.bundle.catalog import Catalog
        >>> from dcnrank.data.encoding.table_encoder import TableEncoder
        >>> from dcnrank.models import DCNConfig
        >>> from dcnrank.models.table_inputs import build_table_dcn
        >>> spec = FeatureSpec((CategoricalColumn("u"), CategoricalColumn("i")), label="y", task="binary",
        ...                    user="u", item="i")
        >>> fit = {"u": [1, 1, 2], "i": ["a", "b", "c"], "y": [1, 0, 1]}
        >>> encoder = TableEncoder.fit(spec, fit)
        >>> config = DCNConfig(structure="cross_only", embedding_dim=2)
        >>> bundle = Bundle(build_table_dcn(config, spec, encoder.table_sizes), config, encoder,
        ...                      catalog=Catalog.build(spec, encoder, fit))
        >>> ranking = rank_items(bundle, 1)  # user 1 had a and b: only c is left
        >>> [item.item for item in ranking.items], ranking.candidates
        ([{'i': 'c'}], 1)
        >>> rank_items(bundle, 99, candidates=["a", "zz"]).unknown
        {'u': [99], 'i': ['zz']}
    """
    catalog = bundle.catalog
    if catalog is None:
        raise RankingError(
            "model",
            "this bundle holds no catalogue to rank from (its spec needs `user` and `item` roles, and training "
            "rows to take them from)",
        )
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise RankingError("top", f"must be a positive int. Received: top={top!r:.{_ECHO}}")
    spec = bundle.spec
    columns = {column.name: column for column in spec.columns}
    if user_id is not None:
        _check_value("user_id", user_id, columns[catalog.user], id_kind(bundle, catalog.user), is_id=True)
    given_user = _checked_values(bundle, "user", user, spec.user_columns, "user column")
    given_context = _checked_values(bundle, "context", context, context_columns(spec), "context column")
    ids, positions = _candidates(bundle, catalog, candidates)
    count = len(ids)
    catalog_user = catalog.user_position(user_id) if user_id is not None else None
    user_values = {
        name: given_user.get(name, None if catalog_user is None else catalog.users[name][catalog_user])
        for name in spec.user_columns
    }
    table = _candidate_rows(spec, catalog, ids, positions, user_id, user_values, given_context)
    try:
        rows = bundle.encode(table, source="the ranking request")
    except TableDataError as error:
        raise RankingError(_field_of(str(error), spec, catalog), str(error)) from None
    categorical = rows.features.categorical  # (N, Fc)
    where = spec.role_positions()
    item_rows = categorical[:, where["item"]].numpy()  # (N,)
    keep = np.ones(count, dtype=bool)
    if candidates is None and user_id is not None and count:
        user_row = int(categorical[0, where["user"]])
        indptr, members = catalog.interactions.indptr, catalog.interactions.members
        if user_row != OOV_INDEX and user_row < len(indptr) - 1:
            seen = members[int(indptr[user_row]) : int(indptr[user_row + 1])].numpy()
            keep = ~np.isin(item_rows, seen)
    unknown, missing, notices = _report(spec, catalog, rows.features.categorical, user_id, user_values,
                                        given_context, ids, positions)  # fmt: skip
    if count == 0 or not keep.any():
        return Ranking(user_id, 0, [], unknown, missing, notices)
    scores = bundle.predictions(rows, batch_size=count).numpy()  # (N,), one pass
    kept = np.flatnonzero(keep)
    best = kept[np.argsort(-scores[kept], kind="stable")[:top]]
    items = [
        RankedItem(rank + 1, float(scores[i]), _item_values(catalog, ids[i], positions[i]))
        for rank, i in enumerate(best.tolist())
    ]
    return Ranking(user_id, len(kept), items, unknown, missing, notices)


def _checked_values(
    bundle: Bundle, field: str, values: Mapping[str, Any] | None, allowed: tuple[str, ...], what: str
) -> dict[str, Any]:
    """`values` (user or context column -> raw value), each checked for its column; None values dropped."""
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise RankingError(field, f"must map column names to values. Received: {values!r:.{_ECHO}}")
    columns = {column.name: column for column in bundle.spec.columns}
    out = {}
    for name, value in values.items():
        if name not in allowed:
            listed = ", ".join(allowed) if allowed else "none"
            raise RankingError(f"{field}.{name!s:.{_ECHO}}", f"is not a {what} of this model; they are: {listed}")
        if value is not None:
            _check_value(f"{field}.{name}", value, columns[name], id_kind(bundle, name))
            out[name] = value
    return out


def _is_category(value: Any, kind: str | None) -> bool:
    if isinstance(value, str):
        return kind != "int" and len(value) <= MAX_STRING_CHARS
    return bool(
        isinstance(value, int | np.integer)
        and not isinstance(value, bool)
        and kind != "str"
        and _INT64[0] <= value <= _INT64[1]
    )


def _check_value(field: str, value: Any, column: Any, kind: str | None, *, is_id: bool = False) -> None:
    """Raise unless `value` fits `column`: a category of the vocabulary's kind, a finite
    number, or items (a list of categories or a separated string)."""
    wanted = {"int": "an int that fits int64", "str": f"a str of at most {MAX_STRING_CHARS} characters"}
    if isinstance(column, CategoricalColumn) or is_id:
        if not _is_category(value, kind):
            what = wanted.get(kind or "", "an int or a str")
            raise RankingError(field, f"must be {what}, as the column's vocabulary holds. Received: {value!r:.{_ECHO}}")
    elif isinstance(column, NumericColumn):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise RankingError(field, f"must be a finite number. Received: {value!r:.{_ECHO}}")
    elif isinstance(column, MultiHotColumn):
        fine = _is_category(value, None) and isinstance(value, str)
        fine = fine or (isinstance(value, list | tuple) and all(_is_category(v, kind) for v in value))
        if not fine:
            raise RankingError(
                field,
                f"must be a list of items or a str of items separated by {column.separator!r}. "
                f"Received: {value!r:.{_ECHO}}",
            )


def _candidates(
    bundle: Bundle, catalog: Catalog, candidates: Sequence[int | str] | None
) -> tuple[list[Any], list[int | None]]:
    """The candidate ids and each one's catalogue entry (None for an item not in it)."""
    if candidates is None:
        ids = list(catalog.items[catalog.item])
        return ids, list(range(len(ids)))
    if isinstance(candidates, str | bytes) or not isinstance(candidates, Sequence) or len(candidates) == 0:
        raise RankingError("candidates", f"must be a non-empty list of item ids. Received: {candidates!r:.{_ECHO}}")
    item_column = next(c for c in bundle.spec.columns if c.name == catalog.item)
    kind = id_kind(bundle, catalog.item)
    seen = set()
    for i, value in enumerate(candidates):
        _check_value(f"candidates[{i}]", value, item_column, kind, is_id=True)
        if value in seen:
            raise RankingError("candidates", f"must not repeat an item id. Received: {value!r:.{_ECHO}} twice")
        seen.add(value)
    ids = [value.item() if isinstance(value, np.generic) else value for value in candidates]
    if len({isinstance(value, str) for value in ids}) > 1:
        raise RankingError("candidates", "must hold item ids of one kind, all ints or all strings")
    return ids, [catalog.item_position(value) for value in ids]


def _constant(value: Any, count: int) -> pa.Array:
    """`value` repeated `count` times, as Arrow (all nulls when it is None)."""
    if value is None:
        return pa.nulls(count)
    return pa.array([list(value) if isinstance(value, tuple) else value] * count)


def _candidate_rows(
    spec: FeatureSpec,
    catalog: Catalog,
    ids: list[Any],
    positions: list[int | None],
    user_id: Any,
    user_values: Mapping[str, Any],
    context: Mapping[str, Any],
) -> pa.Table:
    """One row per candidate with every input column of the spec, as raw values."""
    count = len(ids)
    take = pa.array([0 if p is None else p for p in positions], type=pa.int64(),
                    mask=np.array([p is None for p in positions], dtype=bool))  # fmt: skip
    item_side = catalog.item_table.take(take) if catalog.num_items else None
    arrays = {}
    for name in spec.input_names:
        if name == catalog.item:
            arrays[name] = pa.array(ids) if count else pa.nulls(0)
        elif name in spec.item_columns:
            arrays[name] = item_side.column(name).combine_chunks() if item_side is not None else pa.nulls(count)
        elif name == catalog.user:
            arrays[name] = _constant(user_id, count)
        elif name in user_values:
            arrays[name] = _constant(user_values[name], count)
        else:
            arrays[name] = _constant(context.get(name), count)
    return pa.table(arrays)


def _report(
    spec: FeatureSpec,
    catalog: Catalog,
    categorical: torch.Tensor,
    user_id: Any,
    user_values: Mapping[str, Any],
    context: Mapping[str, Any],
    ids: list[Any],
    positions: list[int | None],
) -> tuple[dict[str, list[Any]], list[str], list[str]]:
    """What went through the OOV row (`unknown`), what no one gave (`missing`), in words too."""
    names = [c.name for c in spec.of_type("categorical")]
    first = categorical[0].tolist() if len(categorical) else []
    unknown: dict[str, list[Any]] = {}
    missing: list[str] = []
    notices: list[str] = []
    given = {catalog.user: user_id, **user_values, **context}
    for name in spec.input_names:
        if name == catalog.item or name in spec.item_columns:
            continue
        value = given.get(name)
        if value is None:
            missing.append(name)
        elif name in names and first and first[names.index(name)] == OOV_INDEX:
            unknown[name] = [value]
    if catalog.user in unknown:
        notices.append(f"user {user_id!r:.{_ECHO}} is not in the model's vocabulary: scored through the "
                       "out-of-vocabulary row")  # fmt: skip
    elif user_id is not None and catalog.user_position(user_id) is None and spec.user_columns:
        notices.append(
            f"user {user_id!r:.{_ECHO}} is not in the catalogue: its user columns come from the request only"
        )
    if catalog.item in names and len(categorical):
        rows = categorical[:, names.index(catalog.item)].tolist()
        oov = [ids[i] for i, row in enumerate(rows) if row == OOV_INDEX]
        if oov:
            unknown[catalog.item] = oov
            notices.append(f"{len(oov)} candidate item(s) not in the model's vocabulary: scored through the "
                           "out-of-vocabulary row")  # fmt: skip
    outside = sum(p is None for p in positions)
    if outside and spec.item_columns:
        notices.append(f"{outside} candidate item(s) not in the catalogue: their item columns are missing")
    if missing:
        notices.append(f"no value for {', '.join(missing)}: scored as missing")
    return unknown, missing, notices


def _item_values(catalog: Catalog, item_id: Any, position: int | None) -> dict[str, Any]:
    return {
        name: item_id if name == catalog.item else (None if position is None else values[position])
        for name, values in catalog.items.items()
    }


def _field_of(message: str, spec: FeatureSpec, catalog: Catalog) -> str:
    """The request field behind an encoder error, from the column its message names."""
    for name in spec.input_names:
        if repr(name) in message:
            if name == catalog.user:
                return "user_id"
            if name == catalog.item:
                return "candidates"
            return f"user.{name}" if name in spec.user_columns else f"context.{name}"
    return "body"
