"""`FeatureSpec`: which columns of a table feed a model, as what type, and what it predicts.

A spec is frozen dataclasses (:class:`CategoricalColumn`, :class:`NumericColumn`,
:class:`MultiHotColumn`, :class:`FeatureSpec`) or the same thing as TOML::

    task = "binary"            # "regression" (MSE), "binary" (BCE with logits) or "ranking"
    label = "clicked"          # (graded labels ≥ 0, ordered within each group: train.loss)
    group = "user_id"          # optional: per-group AUC (GAUC) over this column; the lists
                               # of a ranking task (default: the user column)

    user = "user_id"           # optional roles: the user (or query) column and the item
    item = "item_id"           # column (categorical), which turn on bias terms, histories
    user_columns = ["age"]     # and recommendation; the columns that describe the user
    item_columns = ["genres"]  # and those that describe the item

    [defaults.categorical]     # optional: options every column of a type starts from
    min_count = 5              # (not given to hashed columns, which keep no counts)

    [columns]
    I1 = "numeric"
    I2 = { type = "numeric", log1p = true }
    user_id = "categorical"
    site = { type = "categorical", hash_buckets = 100000, embedding_dim = 16 }
    genres = { type = "multi_hot", separator = "|", pooling = "mean" }

Validation reuses the run configuration's machinery (`dcnrank.config`): every problem
is collected into one `ConfigError`, unknown keys and types suggest the closest valid
one, and each message names the key (``columns.site.hash_buckets``) and echoes the value.
"""

from __future__ import annotations

import difflib
import typing
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

from dcnrank.config.errors import MAX_LISTED, ConfigError, echo, read_toml, unknown_key_message
from dcnrank.config.rules import check_field

__all__ = [
    "COLUMN_TYPES",
    "POOLINGS",
    "ROLE_KEYS",
    "TASKS",
    "CategoricalColumn",
    "Column",
    "FeatureSpec",
    "MultiHotColumn",
    "NumericColumn",
    "load_feature_spec",
]

TASKS = ("regression", "binary", "ranking")
POOLINGS = ("mean", "sum")


def _positive_or_none(value: Any) -> bool:
    return value is None or value >= 1


# field name -> (predicate on the type-checked value, the rule in words); the same rule
# holds for a field in every column type that has it.
_RULES: Mapping[str, tuple[Callable[[Any], bool], str]] = {
    "name": (lambda v: v.strip() != "", "must be a non-empty column name"),
    "label": (lambda v: v.strip() != "", "must be a non-empty column name"),
    "group": (lambda v: v is None or v.strip() != "", "must be a non-empty column name, or none"),
    "task": (lambda v: v in TASKS, f"must be one of {', '.join(TASKS)}"),
    "min_count": (lambda v: v >= 1, "must be ≥ 1"),
    "hash_buckets": (_positive_or_none, "must be ≥ 1, or none to keep a vocabulary"),
    "embedding_dim": (_positive_or_none, "must be ≥ 1, or none for the model's embedding_dim"),
    "pooling": (lambda v: v in POOLINGS, f"must be one of {', '.join(POOLINGS)}"),
    "separator": (lambda v: v != "", "must be a non-empty string"),
}


def _checked(obj: Any, prefix: str) -> None:
    """Coerce and check every field of the dataclass `obj` in place; raise all problems at once."""
    hints = typing.get_type_hints(type(obj))
    problems = []
    for f in fields(obj):
        raw = getattr(obj, f.name)
        value, problem = check_field(f"{prefix}{f.name}", raw, hints[f.name])
        if problem is None and f.name in _RULES and not _RULES[f.name][0](value):
            problem = f"{prefix}{f.name}: {_RULES[f.name][1]}. Received: {echo(raw)}"
        if problem:
            problems.append(problem)
        else:
            object.__setattr__(obj, f.name, value)
    if problems:
        raise ConfigError(problems)


def _shown(name: Any) -> str:
    """A name as it appears inside a key in a message: itself when short and printable,
    else its `echo` (quoted, escaped, cut short), so that a message stays one short line."""
    return name if isinstance(name, str) and name.isprintable() and len(name) <= 80 else echo(name)


def _prefix(obj: Any) -> str:
    name = getattr(obj, "name", None)
    return f"columns.{_shown(name)}." if isinstance(name, str) else "column."


@dataclass(frozen=True)
class CategoricalColumn:
    """A column of ids or labels (ints or strings), looked up in an embedding table.

    Values seen in at least `min_count` training rows get rows `1..n` of the table;
    every other value, and a missing one, gets the out-of-vocabulary row 0. With
    `hash_buckets = B` no vocabulary is kept: a value's row is
    ``1 + blake2b-64(str(value)) mod B`` (see `dcnrank.data.encoding.feature_hashing`), for
    vocabularies too large to store.

    Args:
        name: str, the column.
        min_count: int ≥ 1, training rows a value needs to get its own row. Defaults to 1.
        hash_buckets: int ≥ 1 or None, hash into this many rows instead of keeping a
            vocabulary (then `min_count` must stay 1). Defaults to None.
        embedding_dim: int ≥ 1 or None, this column's embedding size (None: the
            model's `embedding_dim`). Defaults to None.

    Raises:
        ConfigError: listing every field that breaks its rule.

    Example:
        >>> CategoricalColumn("site", hash_buckets=1000).to_dict()
        {'type': 'categorical', 'min_count': 1, 'hash_buckets': 1000, 'embedding_dim': None}
    """

    type: ClassVar[str] = "categorical"
    name: str
    min_count: int = 1
    hash_buckets: int | None = None
    embedding_dim: int | None = None

    def __post_init__(self) -> None:
        _checked(self, _prefix(self))
        if self.hash_buckets is not None and self.min_count != 1:
            raise ConfigError(
                [
                    f"columns.{_shown(self.name)}.min_count: must be 1 with hash_buckets (a hashed column keeps "
                    f"no counts). Received: min_count={self.min_count}, hash_buckets={self.hash_buckets}"
                ]
            )

    def to_dict(self) -> dict[str, Any]:
        """`{"type": "categorical", option: value, ...}` (the name is the key around it)."""
        return _to_dict(self)


@dataclass(frozen=True)
class NumericColumn:
    """A column of numbers, standardised with the training rows' mean and standard deviation.

    With `log1p`, `log(1 + x)` is taken first (for counts; `x` must be > −1). A
    missing value (empty, null, NaN) becomes a learned default and raises the
    column's "is missing" flag, which the model also sees.

    Args:
        name: str, the column.
        log1p: bool, transform with `log(1 + x)` before standardising. Defaults to False.

    Raises:
        ConfigError: listing every field that breaks its rule.

    Example:
        >>> NumericColumn("I1", log1p=True).to_dict()
        {'type': 'numeric', 'log1p': True}
    """

    type: ClassVar[str] = "numeric"
    name: str
    log1p: bool = False

    def __post_init__(self) -> None:
        _checked(self, _prefix(self))

    def to_dict(self) -> dict[str, Any]:
        """`{"type": "numeric", "log1p": ...}`."""
        return _to_dict(self)


@dataclass(frozen=True)
class MultiHotColumn:
    """A column holding a set of values per row, e.g. genres ``"Action|Comedy"``.

    A string cell is split on `separator` (empty items are dropped); a list cell
    (Parquet, Arrow, a DataFrame of lists) is taken as it is. Items get rows like a
    categorical column's (OOV row 0 below `min_count`), and a row's vector is the
    mean or sum of its items' embeddings (`nn.EmbeddingBag`); a row without items
    gets zeros.

    Args:
        name: str, the column.
        separator: str, what separates items in a string cell. Defaults to ``"|"``.
        pooling: ``"mean"`` or ``"sum"`` of the items' embeddings. Defaults to ``"mean"``.
        min_count: int ≥ 1, training rows an item needs to get its own row. Defaults to 1.
        embedding_dim: int ≥ 1 or None (the model's `embedding_dim`). Defaults to None.

    Raises:
        ConfigError: listing every field that breaks its rule.

    Example:
        >>> MultiHotColumn("genres", pooling="sum").pooling
        'sum'
    """

    type: ClassVar[str] = "multi_hot"
    name: str
    separator: str = "|"
    pooling: str = "mean"
    min_count: int = 1
    embedding_dim: int | None = None

    def __post_init__(self) -> None:
        _checked(self, _prefix(self))

    def to_dict(self) -> dict[str, Any]:
        """`{"type": "multi_hot", option: value, ...}`."""
        return _to_dict(self)


Column = CategoricalColumn | NumericColumn | MultiHotColumn
COLUMN_TYPES: Mapping[str, type] = {
    "categorical": CategoricalColumn,
    "numeric": NumericColumn,
    "multi_hot": MultiHotColumn,
}
_TOP_LEVEL_KEYS = ("task", "label", "group", "user", "item", "user_columns", "item_columns", "columns", "defaults")
ROLE_KEYS = ("user", "item", "user_columns", "item_columns")


def _to_dict(column: Any) -> dict[str, Any]:
    return {"type": column.type, **{f.name: getattr(column, f.name) for f in fields(column) if f.name != "name"}}


def _options(cls: type) -> list[str]:
    return [f.name for f in fields(cls) if f.name != "name"]


@dataclass(frozen=True)
class FeatureSpec:
    """The columns a model reads, the label it predicts, and how it is scored.

    Args:
        columns: the input columns, in order (this order is the order of their
            blocks in the model's input, per type).
        label: str, the column to predict.
        task: ``"regression"`` (MSE; RMSE, MAE), ``"binary"`` (labels 0/1; BCE
            with logits; AUC, log loss) or ``"ranking"`` (graded labels ≥ 0 ordered
            within each group by a ranking loss, `train.loss`; NDCG@k, MAP, MRR, P@k, R@k
            over groups).
        group: str or None, a column grouping rows (e.g. a user, a query): per-group AUC
            for ``binary``, the lists of ``ranking`` (which needs one: without `group`,
            the `user` column is the group). It may also be an input column. Defaults to None.
        user: str or None, the categorical input column naming the user (or query)
            of a row: the owner of a user history, a bias term, whom `recommend`
            ranks items for. Defaults to None.
        item: str or None, the categorical input column naming the item of a row:
            the member of a user history, the catalogue `recommend` ranks. Defaults to None.
        user_columns: names of input columns that describe the user (a user's value
            is the same on all their rows), taken from the training rows when a
            request names only the user. Defaults to ().
        item_columns: names of input columns that describe the item, stored in the
            catalogue with each item. Defaults to ().

    Raises:
        ConfigError: listing every problem: a field out of range, no columns, a
            column named twice, the label also used as an input, or a role naming a
            column that is not an input (or, for `user` and `item`, not categorical).

    Example:
        >>> spec = FeatureSpec((NumericColumn("age"), CategoricalColumn("city")), label="clicked", task="binary")
        >>> FeatureSpec.from_dict(spec.to_dict()) == spec
        True
        >>> [c.name for c in spec.of_type("categorical")]
        ['city']
    """

    columns: tuple[Column, ...]
    label: str
    task: str
    group: str | None = None
    user: str | None = None
    item: str | None = None
    user_columns: tuple[str, ...] = ()
    item_columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        columns = tuple(self.columns) if isinstance(self.columns, Sequence) else self.columns
        object.__setattr__(self, "columns", columns)
        problems, converted = _top_level_problems(self.label, self.task, self.group)
        for name, value in converted.items():
            object.__setattr__(self, name, value)
        if not isinstance(columns, tuple) or not columns:
            problems.append(f"columns: must name at least one input column. Received: {echo(self.columns)}")
            columns = ()
        bad = [c for c in columns if not isinstance(c, CategoricalColumn | NumericColumn | MultiHotColumn)]
        if bad:
            problems.append(
                "columns: must hold CategoricalColumn, NumericColumn or MultiHotColumn objects. "
                f"Received: {echo(bad[0])}"
            )
        names = [c.name for c in columns if isinstance(c, CategoricalColumn | NumericColumn | MultiHotColumn)]
        twice = sorted(n for n, count in Counter(names).items() if count > 1)
        if twice:
            shown = ", ".join(_shown(n) for n in twice[:MAX_LISTED]) + (" ..." if len(twice) > MAX_LISTED else "")
            problems.append(f"columns: each column may appear once. Received twice: {shown}")
        if isinstance(self.label, str) and self.label in names:
            problems.append(
                f"label: the label column {echo(self.label)} must not also be an input column "
                "(the model would see the answer)"
            )
        problems += self._role_problems(columns)
        if self.task == "ranking" and self.group is None:
            if isinstance(self.user, str) and self.user.strip():
                object.__setattr__(self, "group", self.user)  # a user's rows are its lists
            else:
                problems.append(
                    'group: task = "ranking" orders the rows of each group; name the group column '
                    "(`group`, a query or user) or the `user` role. Received: none"
                )
        if problems:
            raise ConfigError(problems)

    def _role_problems(self, columns: tuple[Column, ...]) -> list[str]:
        """Problems of the roles: each must name an input column; `user` and `item` categorical ones."""
        problems: list[str] = []
        by_name = {c.name: c for c in columns if isinstance(c, CategoricalColumn | NumericColumn | MultiHotColumn)}
        for key in ("user", "item"):
            value = getattr(self, key)
            if value is None:
                continue
            if not isinstance(value, str) or not value.strip():
                problems.append(f"{key}: must be a non-empty column name, or none. Received: {echo(value)}")
            elif value not in by_name:
                problems.append(_not_an_input(key, value, by_name))
            elif not isinstance(by_name[value], CategoricalColumn):
                problems.append(
                    f"{key}: the {key} column {echo(value)} must be categorical (ids). "
                    f"Received: a {by_name[value].type} column"
                )
        if self.user is not None and self.user == self.item:
            problems.append(f"item: must differ from user. Received: both {echo(self.user)}")
        claimed: dict[str, str] = {}
        for key in ("user_columns", "item_columns"):
            raw = getattr(self, key)
            names = tuple(raw) if isinstance(raw, list | tuple) else raw
            if not isinstance(names, tuple) or not all(isinstance(n, str) for n in names):
                problems.append(f"{key}: must be a list of column names. Received: {echo(raw)}")
                continue
            object.__setattr__(self, key, names)
            for name in names:
                if name not in by_name:
                    problems.append(_not_an_input(key, name, by_name))
                elif name in (self.user, self.item):
                    side = "user" if name == self.user else "item"
                    problems.append(f"{key}: {echo(name)} is the {side} column itself")
                elif name in claimed:
                    problems.append(f"{key}: {echo(name)} is also in {claimed[name]}; a column describes one side")
                else:
                    claimed[name] = key
        return problems

    def role_positions(self) -> dict[str, int]:
        """The positions of the `user` and `item` columns among the categorical columns
        (the columns of `TableBatch.categorical`), for the roles that are set."""
        names = [c.name for c in self.of_type("categorical")]
        return {key: names.index(getattr(self, key)) for key in ("user", "item") if getattr(self, key) is not None}

    @property
    def input_names(self) -> tuple[str, ...]:
        """The input columns' names, in order."""
        return tuple(c.name for c in self.columns)

    @property
    def training_columns(self) -> tuple[str, ...]:
        """The columns a training read needs: the inputs, the label and the group, once each."""
        return tuple(dict.fromkeys([*self.input_names, self.label, *([self.group] if self.group else [])]))

    def of_type(self, type_name: str) -> tuple[Column, ...]:
        """The input columns of one type (``"categorical"``, ``"numeric"``, ``"multi_hot"``), in order."""
        if type_name not in COLUMN_TYPES:
            raise ValueError(f"`type_name` must be one of {', '.join(COLUMN_TYPES)}. Received: {echo(type_name)}")
        return tuple(c for c in self.columns if c.type == type_name)

    def to_dict(self) -> dict[str, Any]:
        """The spec as the table TOML holds (`defaults` folded in); `from_dict` reads it back."""
        out: dict[str, Any] = {"task": self.task, "label": self.label}
        if self.group is not None:
            out["group"] = self.group
        for key in ("user", "item"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        for key in ("user_columns", "item_columns"):
            if getattr(self, key):
                out[key] = list(getattr(self, key))
        out["columns"] = {c.name: c.to_dict() for c in self.columns}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        """Build a spec from the tables of a spec TOML, checking everything first.

        Args:
            data: ``{"task", "label", "group"?, "user"?, "item"?, "user_columns"?,
                "item_columns"?, "columns": {name: type or {type, ...}},
                "defaults"?: {type: {option: value}}}``.

        Returns:
            The spec.

        Raises:
            ConfigError: listing every problem: unknown keys, types or options (each
                with the closest valid one), missing keys, values of the wrong type or
                out of range, and the problems :class:`FeatureSpec` itself reports.
        """
        if not isinstance(data, Mapping):
            raise ConfigError([f"a feature spec must be a table. Received: {echo(data)}"])
        problems: list[str] = []
        for key in data:
            if key not in _TOP_LEVEL_KEYS:
                problems.append(
                    unknown_key_message(str(key), list(_TOP_LEVEL_KEYS), "", suggest=len(problems) < MAX_LISTED)
                )
        for key in ("task", "label", "columns"):
            if key not in data:
                problems.append(f"{key}: missing; a spec needs task, label and columns")
        defaults = _read_defaults(data.get("defaults", {}), problems)
        columns = _read_columns(data.get("columns", {}), defaults, problems)
        if problems:  # report the top-level fields' problems too, not only the first batch
            given = {k: data[k] for k in ("label", "task") if k in data}
            top, _ = _top_level_problems(given.get("label", "?"), given.get("task", TASKS[0]), data.get("group"))
            raise ConfigError(problems + top)
        try:
            roles = {key: data[key] for key in ROLE_KEYS if key in data}
            return cls(columns=tuple(columns), label=data["label"], task=data["task"], group=data.get("group"), **roles)
        except ConfigError as error:
            raise ConfigError(problems + error.errors) from None

    def check_columns(self, available: Sequence[str], source: str, *, need_label: bool = True) -> None:
        """Raise unless every column the spec reads is among `available`.

        Args:
            available: the table's column names.
            source: the table's name for the message (a path, ``"DataFrame"``).
            need_label: also require the label column (training does; scoring does not).

        Raises:
            TableDataError: listing every missing column, each with the closest
                available name when one is close.
        """
        from dcnrank.data.encoding.table_error import TableDataError  # the error type is data-side

        wanted = [*self.input_names, *([self.label] if need_label else [])]
        if self.group is not None and need_label:
            wanted.append(self.group)
        present = set(available)
        missing = [name for name in dict.fromkeys(wanted) if name not in present]
        if not missing:
            return
        described = []
        for name in missing[:MAX_LISTED]:
            close = difflib.get_close_matches(name, list(available), n=1)
            described.append(echo(name) + (f" (did you mean {echo(close[0])}?)" if close else ""))
        if len(missing) > MAX_LISTED:
            described.append(f"... ({len(missing) - MAX_LISTED} more)")
        raise TableDataError(
            f"{source}: missing column{'s' if len(missing) != 1 else ''} {', '.join(described)}; "
            f"the table has {len(available)} columns: {', '.join(list(available)[:50])}"
            + (" ..." if len(available) > 50 else "")
        )


def _not_an_input(key: str, name: Any, by_name: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(name, list(by_name), n=1) if isinstance(name, str) else []
    hint = f" (did you mean {echo(close[0])}?)" if close else ""
    return f"{key}: {echo(name)} is not one of the spec's input columns{hint}; roles name columns under [columns]"


def _top_level_problems(label: Any, task: Any, group: Any) -> tuple[list[str], dict[str, Any]]:
    """Problems of the spec's own fields, and their converted values where they are fine."""
    hints = typing.get_type_hints(FeatureSpec)
    problems, converted = [], {}
    for name, raw in (("label", label), ("task", task), ("group", group)):
        value, problem = check_field(name, raw, hints[name])
        if problem is None and not _RULES[name][0](value):
            problem = f"{name}: {_RULES[name][1]}. Received: {echo(raw)}"
        if problem:
            problems.append(problem)
        else:
            converted[name] = value
    return problems, converted


def _unknown_type_message(key: str, type_name: Any) -> str:
    message = f"{key}: unknown column type {echo(type_name)}; must be one of {', '.join(COLUMN_TYPES)}"
    close = difflib.get_close_matches(type_name, list(COLUMN_TYPES), n=1) if isinstance(type_name, str) else []
    return message + (f" (did you mean {close[0]!r}?)" if close else "")


def _read_defaults(raw: Any, problems: list[str]) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, Mapping):
        problems.append(f"defaults: must be a table of column types. Received: {echo(raw)}")
        return {}
    defaults: dict[str, dict[str, Any]] = {}
    for type_name, options in raw.items():
        if type_name not in COLUMN_TYPES:
            problems.append(_unknown_type_message(f"defaults.{_shown(type_name)}", type_name))
            continue
        if not isinstance(options, Mapping):
            problems.append(f"defaults.{type_name}: must be a table of options. Received: {echo(options)}")
            continue
        valid = _options(COLUMN_TYPES[type_name])
        for option in options:
            if option not in valid:
                problems.append(
                    unknown_key_message(
                        f"defaults.{type_name}.{option}",
                        [f"defaults.{type_name}.{v}" for v in valid],
                        "",
                        suggest=len(problems) < MAX_LISTED,
                    )
                )
        defaults[type_name] = {k: v for k, v in options.items() if k in valid}
    return defaults


def _read_columns(raw: Any, defaults: Mapping[str, Mapping[str, Any]], problems: list[str]) -> list[Column]:
    if not isinstance(raw, Mapping):
        problems.append(f"columns: must be a table of column name = type. Received: {echo(raw)}")
        return []
    columns: list[Column] = []
    for name, entry in raw.items():
        key = f"columns.{_shown(name)}"
        options: dict[str, Any] = {"type": entry} if isinstance(entry, str) else entry
        if not isinstance(options, Mapping):
            problems.append(f"{key}: must be a column type or a table with `type`. Received: {echo(entry)}")
            continue
        if "type" not in options:
            problems.append(f"{key}: missing `type` (one of {', '.join(COLUMN_TYPES)})")
            continue
        type_name = options["type"]
        if not isinstance(type_name, str) or type_name not in COLUMN_TYPES:  # a list is no key
            problems.append(_unknown_type_message(f"{key}.type", type_name))
            continue
        cls = COLUMN_TYPES[type_name]
        valid = _options(cls)
        unknown = [option for option in options if option != "type" and option not in valid]
        for option in unknown:
            suggest = len(problems) < MAX_LISTED
            problems.append(unknown_key_message(f"{key}.{option}", [f"{key}.{v}" for v in valid], "", suggest=suggest))
        inherited = dict(defaults.get(type_name, {}))
        if options.get("hash_buckets") is not None and "min_count" not in options:
            inherited.pop("min_count", None)  # a default min_count does not reach a hashed column
        values = {**inherited, **{k: v for k, v in options.items() if k in valid}}
        try:
            columns.append(cls(name=name, **values))
        except ConfigError as error:
            problems.extend(error.errors)
    return columns


def load_feature_spec(path: str | Path) -> FeatureSpec:
    """Read a feature spec from a TOML file (see the module docstring for its layout).

    Args:
        path: the TOML file.

    Returns:
        The spec.

    Raises:
        FileNotFoundError: if `path` does not exist (the message names it).
        ConfigError: if the file is not valid TOML (with its line and column) or the
            spec is invalid; every problem is listed, each prefixed with the file name.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "spec.toml"
        >>> _ = path.write_text('task = "binary"\\nlabel = "y"\\n[columns]\\nx = "numeric"\\n')
        >>> load_feature_spec(path).columns
        (NumericColumn(name='x', log1p=False),)
    """
    path = Path(path)
    data = read_toml(path, "feature spec")
    try:
        return FeatureSpec.from_dict(data)
    except ConfigError as error:
        raise ConfigError([f"{path.name}: {problem}" for problem in error.errors]) from None
