"""`DataConfig`: which data a training run reads, how it splits it, and when it stops."""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass, fields
from typing import Any

from dcnrank.config.errors import ConfigError
from dcnrank.config.rules import check_field


@dataclass(frozen=True)
class DataConfig:
    """The data side of a training run: MovieLens' split and vocabularies, and, for every run,
    the validation slice, early stopping and (own tables) streaming.

    `split`, `vocab` and `data_dir` (:data:`MOVIELENS_ONLY_KEYS`) are read by the MovieLens
    run alone; a table run (`--data`, `--dataset`) refuses them when set.

    Args:
        split: str, the train/test split (`random`, `leaky`, `u1`…`u5`, `ua`, `ub`,
            `temporal`). Defaults to `"random"` (disjoint 80/20).
        vocab: str, fit vocabularies on the `"train"` rows (default) or on `"all"` rows
            (the seed's choice).
        seed: int, seeds the split (MovieLens, and `--dataset`'s `random` split) and a
            table run's held-out validation rows. Defaults to 0.
        data_dir: str or None, where MovieLens is (None: `$DCNRANK_DATA`, the cache, or
            a download).
        validation_fraction: float in (0, 1), the last share of the training split held
            out to pick the best epoch. Defaults to 0.1.
        patience: int ≥ 1, epochs without a better validation RMSE before training
            stops. Defaults to 2.
        validation: str, how the validation slice is carved from the training rows:
            `"last"` rows (default) or a seeded `"random"` share (for sorted splits
            such as `u1`…`u5`, whose last rows are the last users).
        max_train_rows: int ≥ 2 or None, keep only the first rows of the training split
            (quick runs). Defaults to None (all).
        stream: bool, own tables (`--data`) only: read the file chunk by chunk instead
            of whole (`dcnrank.data.streamed_table`), for files larger than memory.
            Defaults to False.
        shuffle_buffer: int ≥ 1, with `stream`: rows held to shuffle batches across
            chunks. Defaults to 262,144.
        validation_max_rows: int ≥ 1, with `stream`: at most this many held-out rows
            (held in memory); later rows all train. Defaults to 100,000.

    Raises:
        ConfigError: listing every field that breaks its rule.

    Example:
        >>> DataConfig(split="u1", patience=3).validation_fraction
        0.1
    """

    split: str = "random"
    vocab: str = "train"
    seed: int = 0
    data_dir: str | None = None
    validation_fraction: float = 0.1
    patience: int = 2
    max_train_rows: int | None = None
    validation: str = "last"
    stream: bool = False
    shuffle_buffer: int = 262_144
    validation_max_rows: int = 100_000

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(DataConfig)
        problems = []
        for f in fields(self):
            value, problem = check_field(f"data.{f.name}", getattr(self, f.name), hints[f.name])
            if problem:
                problems.append(problem)
            else:
                object.__setattr__(self, f.name, value)
        if problems:
            raise ConfigError(problems)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# The `data.*` keys only one kind of run reads; the other kind refuses them when set.
MOVIELENS_ONLY_KEYS = ("split", "vocab", "data_dir")
TABLE_ONLY_KEYS = ("stream", "shuffle_buffer", "validation_max_rows")


def movielens_key_resets() -> tuple[str, ...]:
    """`data.*` overrides that set each MovieLens-only key back to its default.

    A table run that starts from the MovieLens recipe applies these before the user's
    own overrides: the recipe's `data.split = "u1"` then neither leaks into the run nor
    trips the refusal of MovieLens-only keys, while a `data.split` the user sets still does.

    Returns:
        One `data.NAME=VALUE` string per key of :data:`MOVIELENS_ONLY_KEYS`.

    Example:
        >>> movielens_key_resets()
        ('data.split="random"', 'data.vocab="train"', 'data.data_dir=none')
    """
    defaults = DataConfig()
    return tuple(
        f"data.{name}={'none' if getattr(defaults, name) is None else json.dumps(getattr(defaults, name))}"
        for name in MOVIELENS_ONLY_KEYS
    )


def refuse_changed(data: DataConfig, names: tuple[str, ...], why: str) -> None:
    """Raise if any of the `data.*` keys `names` is set away from its default.

    Raises:
        ConfigError: listing each such key as ``data.NAME: WHY. Received: VALUE``.

    Example:
        >>> refuse_changed(DataConfig(), TABLE_ONLY_KEYS, "applies to --data tables")
    """
    defaults = DataConfig()
    problems = [
        f"data.{name}: {why}. Received: {getattr(data, name)!r}"
        for name in names
        if getattr(data, name) != getattr(defaults, name)
    ]
    if problems:
        raise ConfigError(problems)
