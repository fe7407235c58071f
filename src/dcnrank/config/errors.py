"""`ConfigError`: every problem found in a run configuration, reported at once."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A configuration is invalid; `errors` lists every problem, one line each.

    Args:
        errors: the problems, each naming the key (``section.field``), the rule and the
            value received.

    Example:
        >>> str(ConfigError(["a", "b"]))
        'invalid configuration (2 errors):\\n  - a\\n  - b'
    """

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        count = len(self.errors)
        header = f"invalid configuration ({count} error{'s' if count != 1 else ''}):"
        super().__init__("\n  - ".join([header, *self.errors]))


def read_toml(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """Parse a TOML file, or raise an error that names the file.

    Args:
        path: the file.
        what: how to call it in the not-found message ("config file", "feature spec").

    Returns:
        The parsed tables.

    Raises:
        FileNotFoundError: when `path` is not a file.
        ConfigError: when it is not UTF-8 TOML (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found. Received: path={str(path)!r}")
    try:
        with path.open("rb") as stream:
            return tomllib.load(stream)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([f"{path}: not valid TOML: {error}"]) from error
    except UnicodeDecodeError as error:
        raise ConfigError([f"{path}: not valid TOML: not UTF-8 ({error.reason})"]) from error
