"""The rules a run configuration's fields obey: their types (from the dataclasses' hints)
and their ranges, checked one field at a time so that every problem can be reported."""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from dcnrank.config.errors import echo

__all__ = ["NONE_WORDS", "Rule", "at_least", "check_field", "coerce", "half_open", "open_interval"]

# words that set an optional field to None: bare in a `key=value` override, and, in a
# file (TOML has no null), quoted for a field that is not text
NONE_WORDS = ("none", "null")
# TOML's integers are 64-bit; a larger one would overflow the int64 tensors, seeds and
# sizes it feeds long after the config was read.
_INT_LOW, _INT_HIGH = -(2**63), 2**63 - 1


# a field's range rule: (predicate on the already type-checked value, the rule in words)
Rule = tuple[Callable[[Any], bool], str]


def at_least(low: int | float) -> Callable[[Any], bool]:
    """A rule's predicate: None, or a value ≥ `low`."""
    return lambda v: v is None or v >= low


def open_interval(low: float, high: float) -> Callable[[Any], bool]:
    """A rule's predicate: a value in (`low`, `high`)."""
    return lambda v: low < v < high


def half_open(low: float, high: float) -> Callable[[Any], bool]:
    """A rule's predicate: a value in [`low`, `high`)."""
    return lambda v: low <= v < high


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


def check_field(
    key: str, value: Any, hint: Any, source: str = "", rules: Mapping[str, Rule] | None = None
) -> tuple[Any, str | None]:
    """Coerce one field and check its rule.

    Args:
        key: `section.field`, e.g. `"train.epochs"`.
        value: the raw value.
        hint: the field's type hint.
        source: where the value came from, appended to a problem, e.g. `" (from run.toml)"`.
        rules: `section.field -> Rule`, the range rules of the field's section (each
            config module's `RULES`); a key without one is only type-checked.

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
    rule = (rules or {}).get(key)
    if rule is not None and not rule[0](converted):
        return value, f"{key}: {rule[1]}. Received: {echo(value)}{source}"
    return converted, None
