"""`ConfigError`: every problem found in a run configuration, reported at once."""

from __future__ import annotations

import difflib
import reprlib
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["MAX_LISTED", "MAX_TOML_BYTES", "ConfigError", "echo", "read_toml", "unknown_key_message"]

# A config file or a feature spec is a small hand-written text file; a spec of thousands
# of columns fits in a tenth of this. A larger file is refused before it is parsed, so
# that neither its text nor its parsed tables can cost memory in proportion to it.
MAX_TOML_BYTES = 1 << 20

# Problems a `ConfigError` message lists; `errors` keeps them all, the message says how
# many more there are.
MAX_LISTED = 20

# How a value appears after "Received:": short values exactly as `repr`, long strings,
# big ints, long lists and deep nesting cut short, so that one message stays a line.
_ECHO = reprlib.Repr()
_ECHO.maxlevel, _ECHO.maxlist, _ECHO.maxtuple, _ECHO.maxdict = 3, 8, 8, 8
_ECHO.maxset, _ECHO.maxfrozenset, _ECHO.maxstring, _ECHO.maxlong, _ECHO.maxother = 8, 8, 120, 60, 120


def echo(value: Any) -> str:
    """`repr(value)`, cut short for long or deeply nested values (never more than ~200 characters).

    Example:
        >>> echo([1, 2.5, "a"])
        "[1, 2.5, 'a']"
        >>> len(echo("x" * 10_000)) < 130
        True
    """
    return _ECHO.repr(value)


class ConfigError(ValueError):
    """A configuration is invalid; `errors` lists every problem, one line each.

    The message lists the first `MAX_LISTED` problems and says how many more there are.

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
        listed = self.errors[:MAX_LISTED]
        if count > MAX_LISTED:
            listed.append(f"... and {count - MAX_LISTED} more")
        super().__init__("\n  - ".join([header, *listed]))


def read_toml(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """Parse a TOML file of at most `MAX_TOML_BYTES`, or raise an error that names the file.

    A UTF-8 byte order mark at the start is allowed (some editors write one).

    Args:
        path: the file.
        what: how to call it in the not-found message ("config file", "feature spec").

    Returns:
        The parsed tables.

    Raises:
        FileNotFoundError: when `path` is not a file (missing, or a folder).
        ConfigError: when it is larger than `MAX_TOML_BYTES`, not UTF-8, not TOML, or
            nested too deeply to parse (the message names the file).
        OSError: when the file cannot be read (the message names it).

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "run.toml"
        >>> _ = path.write_text("[train]\\nepochs = 3\\n")
        >>> read_toml(path)
        {'train': {'epochs': 3}}
    """
    path = Path(path)
    if not path.is_file():
        kind = " (it is a folder)" if path.is_dir() else ""
        raise FileNotFoundError(f"{what} not found{kind}. Received: path={str(path)!r}")
    with path.open("rb") as stream:
        raw = stream.read(MAX_TOML_BYTES + 1)
    if len(raw) > MAX_TOML_BYTES:
        raise ConfigError([f"{path}: a {what} must be at most {MAX_TOML_BYTES:,} bytes; this one is larger"])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConfigError([f"{path}: not valid TOML: not UTF-8 ({error.reason} at byte {error.start})"]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([f"{path}: not valid TOML: {error}"]) from None
    except RecursionError:
        raise ConfigError([f"{path}: not valid TOML: arrays or tables nested too deeply"]) from None
    except ValueError as error:  # tomllib lets int() refuse numbers of over 4,300 digits
        reason = str(error).partition(":")[0]
        raise ConfigError([f"{path}: not valid TOML: {reason}"]) from None


def unknown_key_message(key: str, known: list[str], source: str, *, suggest: bool = True) -> str:
    """The problem with an unknown key, naming the closest known one.

    Args:
        key: the unknown key, e.g. `"train.epoch"`.
        known: the valid keys.
        source: where the key came from (a file name, an override), or `""`.
        suggest: look for a close key (`False` spares difflib once enough is listed).

    Example:
        >>> unknown_key_message("train.epoch", ["train.epochs"], "run.toml")
        "unknown key 'train.epoch' (did you mean 'train.epochs'?) (run.toml)"
    """
    message = f"unknown key {echo(key)}"
    close = difflib.get_close_matches(key, known, n=1) if suggest else []
    if suggest and not close and "." not in key:  # a field given without its section
        close = [k for k in known if k.endswith(f".{key}")][:1]
    if close:
        message += f" (did you mean {close[0]!r}?)"
    return message + (f" ({source})" if source else "")
