"""The rules a run configuration's fields obey: their types (from the dataclasses' hints)
and their ranges, checked one field at a time so that every problem can be reported."""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from dcnrank.data.splits import SPLIT_NAMES
from dcnrank.data.validation_split import VALIDATION_POLICIES
from dcnrank.experiments.movielens import VOCAB_POLICIES
from dcnrank.models.config import STRUCTURES
from dcnrank.training.trainer import PRECISIONS

__all__ = ["RULES", "check_field", "coerce"]

_NONE_WORDS = ("none", "null")


def _at_least(low: int | float) -> Callable[[Any], bool]:
    return lambda v: v is None or v >= low


def _open_interval(low: float, high: float) -> Callable[[Any], bool]:
    return lambda v: low < v < high


def _half_open(low: float, high: float) -> Callable[[Any], bool]:
    return lambda v: low <= v < high


# key -> (predicate on the already type-checked value, the rule in words)
RULES: Mapping[str, tuple[Callable[[Any], bool], str]] = {
    "model.structure": (lambda v: v in STRUCTURES, f"must be one of {', '.join(STRUCTURES)}"),
    "model.embedding_dim": (_at_least(1), "must be ≥ 1"),
    "model.num_cross_layers": (_at_least(1), "must be ≥ 1"),
    "model.projection_dim": (_at_least(1), "must be ≥ 1, or none for full rank"),
    "model.deep_units": (lambda v: all(u >= 1 for u in v), "must hold layer widths ≥ 1"),
    "model.dropout": (_half_open(0.0, 1.0), "must be in [0, 1)"),
    "train.learning_rate": (lambda v: v > 0, "must be > 0"),
    "train.epochs": (_at_least(1), "must be ≥ 1"),
    "train.batch_size": (_at_least(1), "must be ≥ 1"),
    "train.eval_batch_size": (_at_least(1), "must be ≥ 1"),
    "train.weight_decay": (_at_least(0.0), "must be ≥ 0"),
    "train.beta_1": (_half_open(0.0, 1.0), "must be in [0, 1)"),
    "train.beta_2": (_half_open(0.0, 1.0), "must be in [0, 1)"),
    "train.epsilon": (lambda v: v > 0, "must be > 0"),
    "train.precision": (lambda v: v in PRECISIONS, f"must be one of {', '.join(PRECISIONS)}"),
    "data.split": (lambda v: v in SPLIT_NAMES, f"must be one of {', '.join(SPLIT_NAMES)}"),
    "data.vocab": (lambda v: v in VOCAB_POLICIES, f"must be one of {', '.join(VOCAB_POLICIES)}"),
    "data.validation_fraction": (_open_interval(0.0, 1.0), "must be in (0, 1)"),
    "data.patience": (_at_least(1), "must be ≥ 1"),
    "data.validation": (lambda v: v in VALIDATION_POLICIES, f"must be one of {', '.join(VALIDATION_POLICIES)}"),
    "data.max_train_rows": (_at_least(2), "must be ≥ 2 (one training and one validation row), or none for all"),
    "data.shuffle_buffer": (_at_least(1), "must be ≥ 1"),
    "data.validation_max_rows": (_at_least(1), "must be ≥ 1"),
}


class _WrongType(ValueError):
    """`value` is not of the field's type; the message says which type it must be."""


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return " or ".join(_describe(a) for a in inner) + " or none"
    if origin is tuple:
        return f"a list of {_describe(typing.get_args(hint)[0]).removeprefix('an ').removeprefix('a ')}s"
    return {int: "an int", float: "a number", bool: "true or false", str: "a string"}.get(hint, str(hint))


def coerce(value: Any, hint: Any) -> Any:
    """Return `value` as the type `hint` names (ints widen to floats, lists become tuples).

    Args:
        value: a value parsed from TOML (or a bare word from a `key=value` override).
        hint: the field's resolved type hint: `int`, `float`, `bool`, `str`,
            `tuple[int, ...]`, or one of them `| None`.

    Returns:
        The converted value; `None` for an optional field given `none`/`null`.

    Raises:
        ValueError: if `value` does not fit `hint`; the message names the expected type.
    """
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in _NONE_WORDS):
            return None
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        try:
            return coerce(value, inner[0])
        except _WrongType:
            raise _WrongType(_describe(hint)) from None
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if not isinstance(value, list | tuple):
            raise _WrongType(_describe(hint))
        try:
            return tuple(coerce(v, item) for v in value)
        except _WrongType:
            raise _WrongType(_describe(hint)) from None
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif hint is str:
        ok = isinstance(value, str)
    else:  # pragma: no cover - every config field has one of the types above
        raise TypeError(f"unsupported config field type {hint!r}")
    if not ok:
        raise _WrongType(_describe(hint))
    return value


def check_field(key: str, value: Any, hint: Any, source: str = "") -> tuple[Any, str | None]:
    """Coerce one field and check its rule.

    Args:
        key: `section.field`, e.g. `"train.epochs"`.
        value: the raw value.
        hint: the field's type hint.
        source: where the value came from, appended to a problem, e.g. `" (from run.toml)"`.

    Returns:
        `(converted value, None)`, or `(value, problem)` with the problem in words:
        ``"train.epochs: must be ≥ 1. Received: 0 (from run.toml)"``.
    """
    try:
        converted = coerce(value, hint)
    except _WrongType as error:
        return value, f"{key}: must be {error}. Received: {value!r}{source}"
    rule = RULES.get(key)
    if rule is not None and not rule[0](converted):
        return value, f"{key}: {rule[1]}. Received: {value!r}{source}"
    return converted, None
