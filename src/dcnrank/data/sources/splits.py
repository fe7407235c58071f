"""Train/test splits of a ratings table as seeded row indices, including the seed's leaky one.

Split names:

- ``random``: one seeded permutation; the first 80% of it is train, the rest test
  (disjoint; train keeps permutation order, the order the tutorial batches in).
- ``leaky``: the tutorial's bug. Its ``ratings_ds.shuffle(100_000)`` reshuffles on every
  pass, so ``take(80_000)`` and ``skip(80_000)`` read two independent permutations:
  train is the first 80% of one, test the last 20% of the next one drawn from the same
  generator; about 80% of test rows are also train rows.
- ``u1``...``u5``, ``ua``, ``ub``: GroupLens' own split files (``<name>.base`` / ``.test``).
- ``temporal``: rows sorted by timestamp (stable); the latest 20% are test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dcnrank.config.data_config import SPLIT_NAMES
from dcnrank.data.sources.movielens_100k import read_split_file
from dcnrank.data.sources.ratings import Ratings

__all__ = ["SPLIT_NAMES", "Split", "split_indices"]

_GROUPLENS_SPLITS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")


@dataclass(frozen=True, eq=False)
class Split:
    """Row indices of a train/test split.

    Args:
        name: the split's name (one of :data:`SPLIT_NAMES`).
        train: int64 row indices of the training rows, in training order.
        test: int64 row indices of the test rows.
        overlap: the fraction of test rows whose index is also in ``train`` (0 for a
            proper split, about 0.8 for ``leaky``).
    """

    name: str
    train: np.ndarray
    test: np.ndarray
    overlap: float

    def __repr__(self) -> str:
        return (
            f"Split({self.name!r}, train={len(self.train)}, test={len(self.test)}, "
            f"overlap={self.overlap:.3f})"
        )


def split_indices(
    ratings_or_n: Ratings | int,
    name: str,
    seed: int,
    folder: str | Path | None = None,
    *,
    train_fraction: float = 0.8,
) -> Split:
    """Split rows ``0..n-1`` into train and test.

    Args:
        ratings_or_n: the ratings table, or just its row count for ``random``/``leaky``.
        name: one of :data:`SPLIT_NAMES`.
        seed: seed of ``numpy.random.default_rng`` (used by ``random`` and ``leaky``).
        folder: the MovieLens folder holding the split files (``u1``...``ub`` only).
        train_fraction: the share of rows in train for ``random``, ``leaky`` and
            ``temporal`` (the tutorial: 0.8, i.e. 80,000 of 100,000).

    Returns:
        The split.

    Raises:
        ValueError: if ``name`` is unknown (the message lists the valid names), if the
            split needs a :class:`Ratings` or ``folder`` that was not given, if
            ``train_fraction`` is not in (0, 1), or if train or test would be empty.
        MovieLensFormatError: if a GroupLens split file is malformed.
    """
    if name not in SPLIT_NAMES:
        raise ValueError(f"`name` must be one of {', '.join(SPLIT_NAMES)}. Received: name={name!r}")
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(
            f"`train_fraction` must be in (0, 1). Received: train_fraction={train_fraction!r}"
        )
    ratings = ratings_or_n if isinstance(ratings_or_n, Ratings) else None
    n = len(ratings) if ratings is not None else _row_count(ratings_or_n)

    if name in _GROUPLENS_SPLITS:
        ratings = _require_ratings(ratings, name)
        if folder is None:
            raise ValueError(
                f"split {name!r} reads {name}.base and {name}.test: pass `folder`, the "
                "MovieLens folder. Received: folder=None"
            )
        train = read_split_file(folder, f"{name}.base", ratings)
        test = read_split_file(folder, f"{name}.test", ratings)
        return _make_split(name, train, test)

    n_train = int(round(n * train_fraction))
    if not 0 < n_train < n:
        raise ValueError(
            f"a {name!r} split of {n} rows with train_fraction={train_fraction} leaves train "
            "or test empty"
        )
    if name == "random":
        permutation = np.random.default_rng(seed).permutation(n)
        return _make_split(name, permutation[:n_train], permutation[n_train:])
    if name == "leaky":
        generator = np.random.default_rng(seed)
        first_pass = generator.permutation(n)
        second_pass = generator.permutation(n)
        return _make_split(name, first_pass[:n_train], second_pass[n_train:])
    # temporal
    ratings = _require_ratings(ratings, name)
    order = np.argsort(ratings.timestamp, kind="stable")
    return _make_split(name, order[:n_train], order[n_train:])


def _row_count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(
            "`ratings_or_n` must be a Ratings table or a non-negative int. "
            f"Received: ratings_or_n={value!r:.100}"
        )
    return int(value)


def _require_ratings(ratings: Ratings | None, name: str) -> Ratings:
    if ratings is None:
        raise ValueError(
            f"split {name!r} needs the Ratings table, not a row count, as `ratings_or_n`"
        )
    return ratings


def _make_split(name: str, train: np.ndarray, test: np.ndarray) -> Split:
    train = np.asarray(train, dtype=np.int64)
    test = np.asarray(test, dtype=np.int64)
    overlap = float(np.isin(test, train).mean()) if len(test) else 0.0
    return Split(name=name, train=train, test=test, overlap=overlap)
