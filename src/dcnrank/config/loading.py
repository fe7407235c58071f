"""Read a `TrainRunConfig` from a TOML file and `section.field=value` overrides."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dcnrank.config.errors import ConfigError, echo, read_toml, unknown_key_message
from dcnrank.config.rules import NONE_WORDS
from dcnrank.config.run_config import TrainRunConfig, valid_keys

__all__ = ["load_config", "parse_override"]


def parse_override(text: str) -> tuple[str, Any]:
    """Split `section.field=value` and parse the value as a TOML value.

    A value that is not valid TOML is taken as a bare string, so `data.split=u1` and
    `data.data_dir=/data/ml` need no quotes; a bare `none` (or `null`) sets an optional
    field to None (quoted, `"none"` is text). An override is one line: a value holding
    a line break is refused (TOML would read the first line and drop the rest).

    Args:
        text: one override, e.g. `"model.deep_units=[256,128]"`.

    Returns:
        `(key, value)`, e.g. `("model.deep_units", [256, 128])`.

    Raises:
        ConfigError: if `text` is not a string, has no `=` or nothing before it, or
            its value holds a line break.

    Example:
        >>> parse_override("train.learning_rate=1e-3")
        ('train.learning_rate', 0.001)
        >>> parse_override("data.split=u1")
        ('data.split', 'u1')
        >>> parse_override("model.projection_dim=none")
        ('model.projection_dim', None)
    """
    if not isinstance(text, str):
        raise ConfigError([f"an override must be a string section.field=value. Received: {echo(text)}"])
    key, equals, raw = text.partition("=")
    key = key.strip()
    if not equals or not key:
        raise ConfigError([f"override {echo(text)} must look like section.field=value (e.g. train.epochs=5)"])
    raw = raw.strip()
    if "\n" in raw or "\r" in raw:
        raise ConfigError([f"override {echo(text)}: the value must be on one line"])
    if raw.lower() in NONE_WORDS:  # bare: quoted, `"none"` is the text none
        return key, None
    try:
        value = tomllib.loads(f"value = {raw}")["value"]
    except (tomllib.TOMLDecodeError, RecursionError, ValueError):
        # not TOML (nested too deeply, or an int of thousands of digits): a bare string
        value = raw
    return key, value


def load_config(
    path: str | Path | None = None, overrides: Sequence[str] = (), *, base: TrainRunConfig | None = None
) -> TrainRunConfig:
    """Read a run configuration: defaults (or `base`), then the TOML file, then the overrides in order.

    The file has up to three tables, `[model]`, `[train]` and `[data]`, whose keys are
    the fields of `DCNConfig`, `TrainConfig` and `DataConfig`. Every problem in the file
    and the overrides is collected before one `ConfigError` reports them all.

    Args:
        path: a TOML file, or None for the defaults.
        overrides: a sequence of `section.field=value` strings (see
            :func:`parse_override`); a later one wins over an earlier one and over
            the file.
        base: a configuration to start from instead of the defaults (`dcnrank train
            --auto` applies each candidate's overrides to the run's). Defaults to None.

    Returns:
        The resolved configuration.

    Raises:
        FileNotFoundError: if `path` does not exist (the message names it).
        ConfigError: if the file is not valid TOML (with its line and column) or
            larger than `MAX_TOML_BYTES`, if `overrides` is one string rather than a
            sequence of them, or if keys are unknown (with the closest valid key),
            malformed, of the wrong type or out of range; all of them are listed.

    Example:
        >>> load_config(overrides=["model.projection_dim=20", "train.epochs=5"]).train.epochs
        5
    """
    if isinstance(overrides, str | bytes):
        raise ConfigError(
            [f"overrides must be a list of section.field=value strings, not one string. Received: {echo(overrides)}"]
        )
    data: dict[str, Any] = {} if base is None else base.to_dict()
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
        source = f"override {echo(text)}"
        if not (dot and section and name and "." not in name):
            # not section.field (even `model={...}`, which would replace the whole table)
            problems.append(unknown_key_message(key, valid_keys(), source))
            continue
        table = data.setdefault(section, {})
        if not isinstance(table, dict):  # the file set `section = value`; reported below
            table = data[section] = {}
        table[name] = value
        sources[key] = source
    try:
        config = TrainRunConfig.from_dict(data, sources)
    except ConfigError as error:
        problems.extend(error.errors)
    if problems:
        raise ConfigError(problems)
    return config
