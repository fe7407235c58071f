"""Run configurations: frozen dataclasses read from TOML with `section.field=value` overrides."""

from dcnrank.config.data_config import DataConfig
from dcnrank.config.errors import ConfigError
from dcnrank.config.loading import load_config, parse_override
from dcnrank.config.run_config import SECTIONS, TrainRunConfig, valid_keys

__all__ = [
    "SECTIONS",
    "ConfigError",
    "DataConfig",
    "TrainRunConfig",
    "load_config",
    "parse_override",
    "valid_keys",
]
