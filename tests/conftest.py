"""Shared pytest fixtures: tiny MovieLens-format files, and the real data when available."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# One intra-op thread per test process (and the CLI subprocesses the tests start, which inherit
# this): the tests' tensors are small, and `make test` runs two pytest workers on a 2-core
# machine, where two threads each oversubscribe the cores and make torch's thread barriers spin
# (a 5-epoch toy run takes 14 s instead of 0.6 s under that load). Set before torch is imported.
for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

# --------------------------------------------------------------------------- dcnrank.data

TINY_USERS = [
    "1|24|M|technician|85711",
    "2|53|F|other|94043",
    "3|17|M|student|T8H1N",
]
_FLAGS_COMEDY = "|".join("1" if i == 5 else "0" for i in range(19))
_FLAGS_ACTION_ADVENTURE = "|".join("1" if i in (1, 2) else "0" for i in range(19))
_FLAGS_UNKNOWN = "|".join("1" if i == 0 else "0" for i in range(19))
_FLAGS_DRAMA = "|".join("1" if i == 8 else "0" for i in range(19))
TINY_MOVIES = [
    f"1|Toy Story (1995)|01-Jan-1995||http://example.org/1|{_FLAGS_COMEDY}",
    f"2|GoldenEye (1995)|01-Jan-1995||http://example.org/2|{_FLAGS_ACTION_ADVENTURE}",
    f"3|unknown||||{_FLAGS_UNKNOWN}",
    f"4|Café Society (1995)|4-Feb-1995||http://example.org/4|{_FLAGS_DRAMA}",
]
# user, movie, rating, timestamp; deliberately not sorted by user, movie or time.
TINY_RATINGS = [
    (1, 1, 5, 881250949),
    (1, 2, 3, 881250950),
    (2, 1, 4, 881250951),
    (2, 3, 1, 881250952),
    (3, 4, 2, 881250953),
    (3, 1, 5, 881250948),
]
TINY_GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip


def rating_lines(rows: list[tuple[int, int, int, int]]) -> str:
    """Format (user, movie, rating, timestamp) rows as u.data text."""
    return "".join("\t".join(str(v) for v in row) + "\n" for row in rows)


def write_tiny_movielens(folder: Path) -> Path:
    """Write 3 users, 4 movies and 6 ratings in GroupLens' format into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text(rating_lines(TINY_RATINGS), encoding="ascii")
    (folder / "u.user").write_text("\n".join(TINY_USERS) + "\n", encoding="ascii")
    (folder / "u.item").write_bytes(("\n".join(TINY_MOVIES) + "\n").encode("latin-1"))
    genres = "".join(f"{name}|{index}\n" for index, name in enumerate(TINY_GENRES))
    (folder / "u.genre").write_text(genres + "\n", encoding="ascii")  # the real file ends so
    return folder


@pytest.fixture
def tiny_movielens_dir(tmp_path: Path) -> Path:
    """A folder ``ml-100k/`` holding tiny but well-formed MovieLens files."""
    return write_tiny_movielens(tmp_path / "ml-100k")


@pytest.fixture(scope="session")
def movielens_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real MovieLens 100K folder from ``$DCNRANK_DATA``.

    Skips when ``DCNRANK_DATA`` is unset, unless ``DCNRANK_REQUIRE_DATA=1`` (as in CI),
    in which case it fails.
    """
    from dcnrank.data import locate_movielens

    root = os.environ.get("DCNRANK_DATA", "")
    if not root:
        if os.environ.get("DCNRANK_REQUIRE_DATA") == "1":
            pytest.fail("DCNRANK_REQUIRE_DATA=1 but DCNRANK_DATA is not set")
        pytest.skip("set DCNRANK_DATA to a folder holding ml-100k/ to run real-data tests")
    cache = tmp_path_factory.mktemp("dcnrank-cache")  # a zip-only DCNRANK_DATA extracts here
    return locate_movielens(root, download=False, cache_dir=cache)


@pytest.fixture(scope="session")
def movielens_ratings(movielens_dir: Path):
    """The real ratings, parsed once per session."""
    from dcnrank.data import load_movielens

    return load_movielens(movielens_dir)


# --------------------------------------------------------------------------- bundles


@pytest.fixture(scope="session")
def trained_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of a bundle trained for two epochs on `bundle_support.TABLE`, once per
    session (with its catalogue and histories). Read it; copy it to change it."""
    from bundle_support import train_bundle

    return train_bundle(tmp_path_factory.mktemp("trained") / "bundle")
