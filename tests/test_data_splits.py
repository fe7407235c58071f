"""Tests for dcnrank.data.sources.splits: seeded, disjoint splits, the seed's leaky one, GroupLens files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_RATINGS, rating_lines

from dcnrank.data import SPLIT_NAMES, Ratings, Split, load_movielens, split_indices


def _is_partition(split: Split, n: int) -> bool:
    together = np.concatenate([split.train, split.test])
    return len(together) == n and np.array_equal(np.sort(together), np.arange(n))


def test_random_sizes_and_disjoint() -> None:
    split = split_indices(10, "random", seed=0)
    assert (len(split.train), len(split.test)) == (8, 2)
    assert split.train.dtype == np.int64 and split.test.dtype == np.int64
    assert _is_partition(split, 10)
    assert split.overlap == 0.0
    assert split.name == "random"


def test_random_train_is_in_permutation_order() -> None:
    split = split_indices(100_000, "random", seed=42)
    permutation = np.random.default_rng(42).permutation(100_000)
    assert (len(split.train), len(split.test)) == (80_000, 20_000)
    np.testing.assert_array_equal(split.train, permutation[:80_000])
    np.testing.assert_array_equal(split.test, permutation[80_000:])


@pytest.mark.parametrize("name", ["random", "leaky"])
def test_deterministic_under_a_seed(name: str) -> None:
    first = split_indices(1000, name, seed=7)
    second = split_indices(1000, name, seed=7)
    np.testing.assert_array_equal(first.train, second.train)
    np.testing.assert_array_equal(first.test, second.test)


@pytest.mark.parametrize("name", ["random", "leaky"])
def test_different_seeds_differ(name: str) -> None:
    first = split_indices(1000, name, seed=1)
    second = split_indices(1000, name, seed=2)
    assert not np.array_equal(first.train, second.train)
    assert not np.array_equal(first.test, second.test)


def test_leaky_reproduces_the_tutorial_overlap() -> None:
    split = split_indices(100_000, "leaky", seed=0)
    assert (len(split.train), len(split.test)) == (80_000, 20_000)
    assert 0.78 <= split.overlap <= 0.82
    assert len(np.unique(split.train)) == 80_000
    assert len(np.unique(split.test)) == 20_000
    generator = np.random.default_rng(0)
    np.testing.assert_array_equal(split.train, generator.permutation(100_000)[:80_000])
    np.testing.assert_array_equal(split.test, generator.permutation(100_000)[80_000:])


def test_train_fraction() -> None:
    split = split_indices(10, "random", seed=0, train_fraction=0.5)
    assert (len(split.train), len(split.test)) == (5, 5)


def test_temporal_orders_by_time(tiny_movielens_dir: Path) -> None:
    ratings = load_movielens(tiny_movielens_dir)
    split = split_indices(ratings, "temporal", seed=0, train_fraction=0.5)
    assert split.train.tolist() == [5, 0, 1]  # timestamps ...948, ...949, ...950
    assert split.test.tolist() == [2, 3, 4]
    assert ratings.timestamp[split.train].max() <= ratings.timestamp[split.test].min()
    assert _is_partition(split, 6)


def test_temporal_is_stable_on_ties(tiny_movielens_dir: Path) -> None:
    rows = [(1, 1, 5, 7), (1, 2, 3, 5), (2, 1, 4, 7), (2, 3, 1, 5), (3, 4, 2, 7)]
    (tiny_movielens_dir / "u.data").write_text(rating_lines(rows))
    split = split_indices(load_movielens(tiny_movielens_dir), "temporal", seed=0)
    assert split.train.tolist() == [1, 3, 0, 2]
    assert split.test.tolist() == [4]


def test_grouplens_split_files(tiny_movielens_dir: Path) -> None:
    (tiny_movielens_dir / "u1.base").write_text(rating_lines([TINY_RATINGS[i] for i in (0, 2, 4, 5)]))
    (tiny_movielens_dir / "u1.test").write_text(rating_lines([TINY_RATINGS[i] for i in (3, 1)]))
    ratings = load_movielens(tiny_movielens_dir)
    split = split_indices(ratings, "u1", seed=0, folder=tiny_movielens_dir)
    assert split.train.tolist() == [0, 2, 4, 5]
    assert split.test.tolist() == [3, 1]
    assert split.overlap == 0.0


def test_unknown_name_lists_valid_ones() -> None:
    with pytest.raises(
        ValueError,
        match=r"`name` must be one of random, leaky, u1, .*temporal. Received: name='u6'",
    ):
        split_indices(10, "u6", seed=0)
    assert SPLIT_NAMES == ("random", "leaky", "u1", "u2", "u3", "u4", "u5", "ua", "ub", "temporal")


@pytest.mark.parametrize("name", ["temporal", "u1"])
def test_splits_needing_ratings_refuse_a_count(name: str) -> None:
    with pytest.raises(ValueError, match=rf"split '{name}' needs the Ratings table"):
        split_indices(10, name, seed=0, folder="/nowhere")


def test_grouplens_split_needs_folder(tiny_movielens_dir: Path) -> None:
    ratings = load_movielens(tiny_movielens_dir)
    with pytest.raises(ValueError, match=r"split 'ua' reads ua.base and ua.test: pass `folder`"):
        split_indices(ratings, "ua", seed=0)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5, 1.5])
def test_train_fraction_must_be_in_open_interval(fraction: float) -> None:
    with pytest.raises(
        ValueError,
        match=rf"`train_fraction` must be in \(0, 1\). Received: train_fraction={fraction}",
    ):
        split_indices(10, "random", seed=0, train_fraction=fraction)


@pytest.mark.parametrize("n", [0, 1])
def test_too_few_rows(n: int) -> None:
    with pytest.raises(ValueError, match=rf"a 'random' split of {n} rows .* leaves train or test empty"):
        split_indices(n, "random", seed=0)


@pytest.mark.parametrize("value", [-1, True, 2.5, "10"])
def test_bad_row_count(value: object) -> None:
    with pytest.raises(ValueError, match=r"`ratings_or_n` must be a Ratings table or a non-negative int"):
        split_indices(value, "random", seed=0)  # type: ignore[arg-type]


def test_repr() -> None:
    assert repr(split_indices(10, "random", seed=0)) == "Split('random', train=8, test=2, overlap=0.000)"


# --------------------------------------------------------------------------- real data


@pytest.mark.parametrize(
    ("name", "sizes"),
    [
        ("u1", (80_000, 20_000)),
        ("u5", (80_000, 20_000)),
        ("ua", (90_570, 9_430)),
        ("ub", (90_570, 9_430)),
    ],
)
def test_real_grouplens_splits(
    movielens_ratings: Ratings, movielens_dir: Path, name: str, sizes: tuple[int, int]
) -> None:
    split = split_indices(movielens_ratings, name, seed=0, folder=movielens_dir)
    assert (len(split.train), len(split.test)) == sizes
    assert _is_partition(split, 100_000)
    assert split.overlap == 0.0


def test_real_random_and_temporal(movielens_ratings: Ratings) -> None:
    for name in ("random", "temporal"):
        split = split_indices(movielens_ratings, name, seed=0)
        assert (len(split.train), len(split.test)) == (80_000, 20_000)
        assert _is_partition(split, 100_000)
    temporal = split_indices(movielens_ratings, "temporal", seed=0)
    timestamps = movielens_ratings.timestamp
    assert timestamps[temporal.train].max() <= timestamps[temporal.test].min()
