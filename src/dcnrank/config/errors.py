"""`ConfigError`: every problem found in a run configuration, reported at once."""

from __future__ import annotations

from collections.abc import Sequence


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
