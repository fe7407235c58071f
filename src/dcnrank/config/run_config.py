"""`TrainRunConfig`: everything one `dcnrank train` run needs, in three sections."""

from __future__ import annotations

import json
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from dcnrank.config.data_config import RULES as DATA_RULES
from dcnrank.config.data_config import DataConfig
from dcnrank.config.errors import MAX_LISTED, ConfigError, echo, unknown_key_message
from dcnrank.config.model_config import RULES as MODEL_RULES
from dcnrank.config.model_config import DCNConfig
from dcnrank.config.rules import Rule, check_field
from dcnrank.config.train_config import RULES as TRAIN_RULES
from dcnrank.config.train_config import TrainConfig

__all__ = ["RULES", "SECTIONS", "TrainRunConfig", "valid_keys"]

# section name -> the frozen dataclass whose fields it holds
SECTIONS: Mapping[str, type] = {"model": DCNConfig, "train": TrainConfig, "data": DataConfig}
# `section.field` -> its range rule: each section's own, kept beside its dataclass
RULES: Mapping[str, Rule] = {**MODEL_RULES, **TRAIN_RULES, **DATA_RULES}


def valid_keys() -> list[str]:
    """Every `section.field` a configuration accepts, in section and field order."""
    return [f"{section}.{f.name}" for section, cls in SECTIONS.items() for f in fields(cls)]


@dataclass(frozen=True)
class TrainRunConfig:
    """A training run: the model's shape, how to train it, and on which data.

    Sections and their fields are those of `DCNConfig` (`model`), `TrainConfig`
    (`train`) and `DataConfig` (`data`); their defaults are the seed's stacked DCN
    trained with the seed's optimizer.

    Args:
        model: the architecture. Defaults to `DCNConfig()`.
        train: the optimizer and loop settings. Defaults to `TrainConfig()`.
        data: the dataset split, validation and early stopping. Defaults to `DataConfig()`.

    Example:
        >>> config = TrainRunConfig.from_dict({"model": {"projection_dim": 20}})
        >>> config.model.projection_dim, config.train.epochs
        (20, 10)
    """

    model: DCNConfig = field(default_factory=DCNConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """`{"model": {...}, "train": {...}, "data": {...}}`, JSON-serialisable."""
        return {
            "model": self.model.to_dict(),
            "train": self.train.to_dict(),
            "data": self.data.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], sources: Mapping[str, str] | None = None) -> TrainRunConfig:
        """Build a configuration from nested sections, checking every field first.

        Args:
            data: `{section: {field: value}}`; missing sections and fields take their
                defaults.
            sources: optional `section.field -> where it came from` (a file name, an
                override), quoted in error messages.

        Returns:
            The configuration.

        Raises:
            ConfigError: listing every problem: unknown sections or keys (with the
                closest valid key), values of the wrong type or out of range, and
                combinations a section rejects.
        """
        sources = sources or {}
        problems: list[str] = []
        if not isinstance(data, Mapping):
            raise ConfigError([f"a configuration must be a table of sections. Received: {echo(data)}"])
        known = valid_keys()
        built: dict[str, Any] = {}
        for key, _ in _flatten(data, problems):
            if key not in known:
                suggest = len(problems) < MAX_LISTED  # the message lists no more; spare difflib
                problems.append(unknown_key_message(key, known, sources.get(key, ""), suggest=suggest))
        for section, section_cls in SECTIONS.items():
            hints = typing.get_type_hints(section_cls)
            values: dict[str, Any] = {}
            section_ok = True
            given = data.get(section, {})
            if not isinstance(given, Mapping):
                continue  # reported by _flatten
            for name, value in given.items():
                if name not in hints:
                    continue  # reported above
                key = f"{section}.{name}"
                values[name], problem = check_field(key, value, hints[name], _from(sources.get(key, "")), RULES)
                if problem:
                    problems.append(problem)
                    section_ok = False
            if section_ok:
                try:
                    built[section] = section_cls(**values)
                except ConfigError as error:  # pragma: no cover - fields were checked above
                    problems.extend(error.errors)
                except ValueError as error:
                    problems.append(f"{section}: {error}")
        if problems:
            raise ConfigError(problems)
        return cls(**built)

    def to_toml(self) -> str:
        """The configuration as TOML that `load_config` reads back to an equal config.

        Fields whose value is None are written as comments (TOML has no null, and
        every optional field defaults to None).
        """
        lines: list[str] = []
        for section, values in self.to_dict().items():
            lines.append(f"[{section}]")
            for name, value in values.items():
                if value is None:
                    lines.append(f"# {name} = none")
                else:
                    lines.append(f"{name} = {_toml_value(value)}")
            lines.append("")
        return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)  # round-trips exactly; TOML reads 1e-07 and 0.01 alike
    if isinstance(value, int):
        return str(value)
    # A TOML basic string is a JSON string, except that TOML also wants DEL escaped.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _flatten(data: Mapping[str, Any], problems: list[str]) -> list[tuple[str, Any]]:
    """`(section.field, value)` pairs; a non-table section or a top-level value is a problem."""
    pairs: list[tuple[str, Any]] = []
    for section, table in data.items():
        if section in SECTIONS and not isinstance(table, Mapping):
            problems.append(f"{section}: must be a table of fields. Received: {echo(table)}")
        elif isinstance(table, Mapping):
            pairs.extend((f"{section}.{name}", value) for name, value in table.items())
        else:
            pairs.append((str(section), table))
    return pairs


def _from(source: str) -> str:
    return f" ({source})" if source else ""
