"""The recommended MovieLens 100K configuration (issue 6), shipped inside the package.

`movielens_100k.toml` next to this module is the recipe; the repository's
`configs/movielens_100k.toml` holds the same bytes (a test checks it), so an installed
`dcnrank train` without `--config` trains the recipe too. How it was chosen:
docs/recipe.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

from dcnrank.config import TrainRunConfig, load_config

__all__ = ["RECIPE_FILE", "load_recipe", "recipe_text"]

RECIPE_FILE = "movielens_100k.toml"


def recipe_text() -> str:
    """The recipe's TOML text, as shipped in the package.

    Example:
        >>> "[model]" in recipe_text()
        True
    """
    return resources.files(__package__).joinpath(RECIPE_FILE).read_text(encoding="utf-8")


def load_recipe(overrides: Sequence[str] = ()) -> TrainRunConfig:
    """The recipe as a run configuration, with `section.field=value` overrides applied.

    Args:
        overrides: as `dcnrank.config.load_config`'s; a later one wins.

    Returns:
        The resolved configuration.

    Raises:
        ConfigError: if an override is unknown, malformed or out of range.

    Example:
        >>> load_recipe(["data.split=u2"]).data.split
        'u2'
    """
    with resources.as_file(resources.files(__package__).joinpath(RECIPE_FILE)) as path:
        return load_config(path, overrides)
