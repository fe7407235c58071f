"""The rules a run configuration's fields obey: their types (from the dataclasses' hints)
and their ranges, checked one field at a time so that every problem can be reported."""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from dcnrank.config.errors import echo
from dcnrank.data.splits import SPLIT_NAMES
from dcnrank.data.validation_split import VALIDATION_POLICIES
from dcnrank.models.config import STRUCTURES
from dcnrank.training.trainer import PRECISIONS

__all__ = ["NONE_WORDS", "RULES", "check_field", "coerce"]

# words that set an optional field to None: bare in a `key=value` override, and, in a
# file (TOML has no null), quoted for a field that is not text
NONE_WORDS = ("none", "null")
# TOML's integers are 64-bit; a larger one would overflow the int64 tensors, seeds and
# sizes it feeds long after the config was read.
_INT_LOW, _INT_HIGH = -(2**63), 2**63 - 1


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
    "train.seed": (_at_least(0), "must be ≥ 0"),
    "data.seed": (_at_least(0), "must be ≥ 0"),
    "data.data_dir": (
        lambda v: v is None or (v.strip() != "" and "\x00" not in v),
        "must be a folder path (not empty, no NUL character), or none",
    ),
    "data.split": (
        lambda v: v is None or v in SPLIT_NAMES,
        f"must be one of {', '.join(SPLIT_NAMES)}, or none",
    ),
    "data.validation_fraction": (_open_interval(0.0, 1.0), "must be in (0, 1)"),
    "data.patience": (_at_least(1), "must be ≥ 1"),
    "data.validation": (lambda v: v in VALIDATION_POLICIES, f"must be one of {', '.join(VALIDATION_POLICIES)}"),
    "data.max_train_rows": (_at_least(2), "must be ≥ 2 (one training and one validation row), or none for all"),
    "data.shuffle_buffer": (_at_least(1), "must be ≥ 1"),
    "data.validation_max_rows": (_at_least(1), "must be ≥ 1"),
}


class _WrongType(ValueError):
    """`value` is not of the field's type; the message says which type it must be."""


class _Unrepresentable(ValueError):
    """`value` has the field's type but no faithful place to go: an int beyond 64 bits, a
    NaN or infinite float, a string with a lone surrogate (which no file can hold)."""


def _representable(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and not _INT_LOW <= value <= _INT_HIGH:
        raise _Unrepresentable("must be a 64-bit int (from -2**63 to 2**63 - 1)")
    if isinstance(value, float) and not math.isfinite(value):
        raise _Unrepresentable("must be a finite number")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _Unrepresentable(
                "must be Unicode text (it holds a lone surrogate, e.g. from a name that is not UTF-8)"
            ) from None
    return value


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
        The converted value; `None` for an optional field given None, or given
        `"none"`/`"null"` when the field is not text (`int | None`, not `str | None`).

    Raises:
        ValueError: if `value` does not fit `hint` (the message names the expected type),
            or fits it but cannot be represented faithfully: an int beyond 64 bits, a
            NaN or infinite float, a string holding a lone surrogate.

    Example:
        >>> coerce([1, 2], tuple[int, ...]), coerce(3, float), coerce("none", int | None)
        ((1, 2), 3.0, None)
        >>> coerce("none", str | None)
        'none'
    """
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        # TOML has no null, so a file may write "none" for an int or a list; for a text
        # field "none" is text (a column or a folder may be called so)
        if isinstance(value, str) and value.lower() in NONE_WORDS and str not in inner:
            return None
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
    return _representable(value)


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
        return value, f"{key}: must be {error}. Received: {echo(value)}{source}"
    except _Unrepresentable as error:
        return value, f"{key}: {error}. Received: {echo(value)}{source}"
    rule = RULES.get(key)
    if rule is not None and not rule[0](converted):
        return value, f"{key}: {rule[1]}. Received: {echo(value)}{source}"
    return converted, None
