"""Read a `TrainRunConfig` from a TOML file and `section.field=value` overrides."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dcnrank.config.errors import ConfigError, read_toml
from dcnrank.config.run_config import TrainRunConfig

__all__ = ["load_config", "parse_override"]


def parse_override(text: str) -> tuple[str, Any]:
    """Split `section.field=value` and parse the value as a TOML value.

    A value that is not valid TOML is taken as a bare string, so `data.split=u1` and
    `data.data_dir=/data/ml` need no quotes; `none` (or `null`) sets an optional field
    to None.

    Args:
        text: one override, e.g. `"model.deep_units=[256,128]"`.

    Returns:
        `(key, value)`, e.g. `("model.deep_units", [256, 128])`.

    Raises:
        ConfigError: if `text` has no `=` or nothing before it.

    Example:
        >>> parse_override("train.learning_rate=1e-3")
        ('train.learning_rate', 0.001)
        >>> parse_override("data.split=u1")
        ('data.split', 'u1')
    """
    key, equals, raw = text.partition("=")
    key = key.strip()
    if not equals or not key:
        raise ConfigError(
            [f"override {text!r} must look like section.field=value (e.g. train.epochs=5)"]
        )
    raw = raw.strip()
    try:
        value = tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> TrainRunConfig:
    """Read a run configuration: defaults, then the TOML file, then the overrides in order.

    The file has up to three tables, `[model]`, `[train]` and `[data]`, whose keys are
    the fields of `DCNConfig`, `TrainConfig` and `DataConfig`. Every problem in the file
    and the overrides is collected before one `ConfigError` reports them all.

    Args:
        path: a TOML file, or None for the defaults.
        overrides: `section.field=value` strings (see :func:`parse_override`); a later
            one wins over an earlier one and over the file.

    Returns:
        The resolved configuration.

    Raises:
        FileNotFoundError: if `path` does not exist (the message names it).
        ConfigError: if the file is not valid TOML (with its line and column), or if
            keys are unknown (with the closest valid key), malformed, of the wrong
            type or out of range; all of them are listed.

    Example:
        >>> load_config(overrides=["model.projection_dim=20", "train.epochs=5"]).train.epochs
        5
    """
    data: dict[str, Any] = {}
    sources: dict[str, str] = {}
    problems: list[str] = []
    if path is not None:
        path = Path(path)
        data = read_toml(path, "config file")
        for section, table in data.items():
            if isinstance(table, dict):
                sources.update({f"{section}.{name}": f"from {path.name}" for name in table})
            else:
                sources[section] = f"from {path.name}"
    for text in overrides:
        try:
            key, value = parse_override(text)
        except ConfigError as error:
            problems.extend(error.errors)
            continue
        section, dot, name = key.partition(".")
        if dot and name and "." not in name:
            table = data.setdefault(section, {})
            if not isinstance(table, dict):  # the file set `section = value`; reported below
                table = data[section] = {}
            table[name] = value
        else:
            data[key] = value  # not section.field: from_dict reports it as unknown
        sources[key] = f"override {text!r}"
    try:
        config = TrainRunConfig.from_dict(data, sources)
    except ConfigError as error:
        problems.extend(error.errors)
    if problems:
        raise ConfigError(problems)
    return config
