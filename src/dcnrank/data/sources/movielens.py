"""MovieLens as a data source: a release folder read into one Arrow table, its feature spec and named splits.

One row per rating, in the ratings file's order, with these columns:

- ``user_id``, ``movie_id`` (int64), ``rating`` (float64), ``timestamp`` (int64, seconds);
- the user's columns where the release has them (100K and 1M): ``age`` (int64, the age
  bucket 1, 18, 25, 35, 45, 50 or 56), ``gender`` (``"M"``/``"F"``), ``occupation`` (text)
  and ``zip_code`` (text);
- the movie's ``title`` (text, not a model input), ``genres`` (list<string>; empty when the
  release lists none) and ``release_year`` (int64, null when unknown: from ``u.item``'s
  release date in 100K, from the title's ``"(1995)"`` elsewhere).

Releases, told apart by the files their folder holds:

- **100K** (``ml-100k``): ``u.data``, ``u.user``, ``u.item`` (GroupLens' parser,
  :func:`dcnrank.data.sources.movielens_100k.load_movielens`); splits ``u1``…``u5``, ``ua``, ``ub``
  (GroupLens' own files), ``random``, ``temporal`` and the seed's ``leaky`` emulation
  (:func:`dcnrank.data.sources.splits.split_indices`);
- **1M** (``ml-1m``): ``ratings.dat``, ``movies.dat``, ``users.dat`` (``::``-separated);
- **10M** (``ml-10M100K``): ``ratings.dat``, ``movies.dat`` (no users; ``tags.dat`` is ignored);
- **latest** (``ml-latest``, ``ml-latest-small``, and the 20M/25M/32M layout):
  ``ratings.csv`` and ``movies.csv`` with headers; ``"(no genres listed)"`` is no genre.

The releases other than 100K split ``random`` and ``temporal``. A malformed line is a
:class:`MovieLensFormatError` naming ``file:line`` and quoting it.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from dcnrank.data.sources.download import default_cache_dir
from dcnrank.data.sources.errors import MovieLensFormatError, MovieLensNotFoundError
from dcnrank.data.sources.movielens_100k import DATA_ENV_VAR, load_movielens, locate_movielens
from dcnrank.data.sources.ratings import AGE_BUCKETS, Ratings
from dcnrank.data.sources.splits import split_indices
from dcnrank.data.spec.feature_spec import FeatureSpec, load_feature_spec

__all__ = [
    "DATASETS",
    "RELEASES",
    "SPEC_FILE",
    "USER_COLUMNS",
    "MovieLensSource",
    "detect_release",
    "load_movielens_source",
    "movielens_spec",
]

log = logging.getLogger(__name__)

SPEC_FILE = "movielens_100k.spec.toml"
USER_COLUMNS = ("age", "gender", "occupation", "zip_code")

# release -> the files that identify its folder (checked in this order: 100K, 1M, 10M, latest)
RELEASES: dict[str, tuple[str, ...]] = {
    "100k": ("u.data", "u.user", "u.item"),
    "1m": ("ratings.dat", "movies.dat", "users.dat"),
    "10m": ("ratings.dat", "movies.dat"),
    "latest": ("ratings.csv", "movies.csv"),
}
_RELEASE_NAMES = {"100k": "MovieLens 100K", "1m": "MovieLens 1M", "10m": "MovieLens 10M", "latest": "ml-latest"}

# the CLI's --dataset names -> (release, the folder names GroupLens' zips unpack to)
DATASETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "movielens-100k": ("100k", ("ml-100k",)),
    "movielens-1m": ("1m", ("ml-1m",)),
    "movielens-10m": ("10m", ("ml-10M100K", "ml-10m")),
    "movielens-latest": ("latest", ("ml-latest",)),
    "movielens-latest-small": ("latest", ("ml-latest-small",)),
}

_GROUPLENS_SPLITS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
_SPLITS: dict[str, tuple[str, ...]] = {
    "100k": (*_GROUPLENS_SPLITS, "random", "temporal", "leaky"),
    "1m": ("random", "temporal"),
    "10m": ("random", "temporal"),
    "latest": ("random", "temporal"),
}

# users.dat's occupation codes (the 1M README)
_OCCUPATIONS_1M = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student", "customer service",
    "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer", "programmer",
    "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer", "tradesman/craftsman",
    "unemployed", "writer",
)  # fmt: skip
_NO_GENRES = "(no genres listed)"
_TITLE_YEAR = re.compile(r"\((\d{4})\)\s*$")
_INT = re.compile(r"-?[0-9]{1,18}")
_RATING_NAMES = ("user id", "movie id", "rating", "timestamp")
_CSV_RATINGS_HEADER = "userId,movieId,rating,timestamp"
_CSV_MOVIES_HEADER = ["movieId", "title", "genres"]
_MIN_RATING, _MAX_RATING = 0.5, 5.0


@dataclass(frozen=True, eq=False)
class MovieLensSource:
    """A MovieLens release as one table, its feature spec and its named splits.

    Args:
        table: one row per rating (see the module docstring for the columns).
        spec: the feature spec of ``table`` (:func:`movielens_spec`).
        release: ``"100k"``, ``"1m"``, ``"10m"`` or ``"latest"``.
        folder: the folder it was read from.
        splits: the split names :meth:`split_rows` accepts, the default first.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\\n1,7,4.5,100\\n2,7,3.0,90\\n")
        >>> _ = (folder / "movies.csv").write_text('movieId,title,genres\\n7,"Heat, The (1995)",Action|Crime\\n')
        >>> source = load_movielens_source(folder)
        >>> source.release, source.table.column("genres").to_pylist(), source.table.column("release_year").to_pylist()
        ('latest', [['Action', 'Crime'], ['Action', 'Crime']], [1995, 1995])
        >>> [rows.tolist() for rows in source.split_rows("temporal", train_fraction=0.5)]
        [[1], [0]]
    """

    table: pa.Table
    spec: FeatureSpec
    release: str
    folder: Path
    splits: tuple[str, ...]
    _ratings: Ratings | None = field(default=None, repr=False)  # 100K: what GroupLens' split files index

    @property
    def default_split(self) -> str:
        """The split a run uses unless told otherwise: ``u1`` for 100K (the recipe's), else ``random``."""
        return self.splits[0]

    def __repr__(self) -> str:
        return (
            f"MovieLensSource({self.release!r}, {self.table.num_rows} ratings, folder={str(self.folder)!r}, "
            f"splits={list(self.splits)})"
        )

    def split_rows(self, name: str, seed: int = 0, *, train_fraction: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
        """The training and test rows of a named split, as positions in :attr:`table`.

        ``u1``…``ub`` are GroupLens' files (in their line order); ``random`` is a seeded
        permutation (train first); ``temporal`` puts the latest ratings in test (ties
        keep file order); ``leaky`` emulates the seed's reshuffling bug (its test rows
        overlap train). See :mod:`dcnrank.data.sources.splits`.

        Args:
            name: one of :attr:`splits`.
            seed: seeds ``random`` and ``leaky``. Defaults to 0.
            train_fraction: the share of rows in train for ``random``, ``leaky`` and
                ``temporal``, in (0, 1). Defaults to 0.8.

        Returns:
            ``(train_rows, test_rows)``, int64 arrays.

        Raises:
            ValueError: if ``name`` is not a split of this release (the message lists
                them), or ``train_fraction`` is outside (0, 1) or leaves a side empty.
            MovieLensNotFoundError: if a GroupLens split file is missing.
            MovieLensFormatError: if a GroupLens split file is malformed.
        """
        if name not in self.splits:
            raise ValueError(
                f"`split` must be one of {', '.join(self.splits)} for {_RELEASE_NAMES[self.release]}. "
                f"Received: split={name!r}"
            )
        if self._ratings is not None:
            parts = split_indices(self._ratings, name, seed, self.folder, train_fraction=train_fraction)
            return parts.train, parts.test
        if name == "random":
            parts = split_indices(self.table.num_rows, name, seed, train_fraction=train_fraction)
            return parts.train, parts.test
        return _temporal(self.table.column("timestamp").to_numpy(), train_fraction)


def _temporal(timestamps: np.ndarray, train_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """`split_indices`' temporal rule on a timestamp column (it needs a 100K `Ratings`)."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"`train_fraction` must be in (0, 1). Received: train_fraction={train_fraction!r}")
    n = len(timestamps)
    n_train = int(round(n * train_fraction))
    if not 0 < n_train < n:
        raise ValueError(
            f"a 'temporal' split of {n} rows with train_fraction={train_fraction} leaves train or test empty"
        )
    order = np.argsort(timestamps, kind="stable").astype(np.int64)
    return order[:n_train], order[n_train:]


# --------------------------------------------------------------------------- the entry point


def load_movielens_source(
    folder_or_name: str | Path, *, data_dir: str | Path | None = None, download: bool = True
) -> MovieLensSource:
    """Read a MovieLens release into one table with its spec and splits.

    Args:
        folder_or_name: a release folder (the release is told by its files), or a name
            of :data:`DATASETS` (``"movielens-100k"``, ``"movielens-1m"``, …), found in
            ``data_dir``, else ``$DCNRANK_DATA``, else the cache (100K only: else downloaded).
        data_dir: with a name: a folder that is the release or holds its folder
            (``ml-1m/``; for 100K also ``ml-100k.zip``). Defaults to None.
        download: with ``"movielens-100k"``: fetch it (checksum-verified) when it is
            nowhere. Defaults to True.

    Returns:
        The source.

    Raises:
        ValueError: if a name is not one of :data:`DATASETS` and no such folder
            exists (the message lists the names).
        MovieLensNotFoundError: if the folder holds no release (the message says what
            each release holds), or a named release is not found where it was looked for.
        MovieLensFormatError: if a line is malformed (``file:line: problem; line: '...'``).
    """
    name = str(folder_or_name)
    if name in DATASETS:
        release, names = DATASETS[name]
        folder = _locate(name, release, names, data_dir, download)
        found = detect_release(folder)
        if found != release:
            raise MovieLensNotFoundError(
                f"{folder}: holds {_RELEASE_NAMES[found]}, not {_RELEASE_NAMES[release]} (--dataset {name})"
            )
    else:
        folder = Path(folder_or_name)
        if not folder.is_dir() and os.sep not in name and not name.startswith("."):
            raise ValueError(
                f"`dataset` must be one of {', '.join(DATASETS)} or a MovieLens folder. Received: {name!r}"
            )
        release = detect_release(folder)
    table, ratings = _read_release(folder, release)
    log.info("read %s from %s: %d ratings", _RELEASE_NAMES[release], folder, table.num_rows)
    return MovieLensSource(table, movielens_spec(release), release, folder, _SPLITS[release], ratings)


def detect_release(folder: str | Path) -> str:
    """Which release a folder holds, by its files.

    Args:
        folder: the folder.

    Returns:
        ``"100k"``, ``"1m"``, ``"10m"`` or ``"latest"``.

    Raises:
        MovieLensNotFoundError: if it holds none (the message lists what each holds).

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> for name in ("ratings.dat", "movies.dat"):
        ...     _ = (folder / name).write_text("")
        >>> detect_release(folder)
        '10m'
    """
    folder = Path(folder)
    for release, files in RELEASES.items():
        if all((folder / name).is_file() for name in files):
            return release
    held = "; ".join(f"{_RELEASE_NAMES[r]}: {', '.join(files)}" for r, files in RELEASES.items())
    what = "is not a folder" if not folder.is_dir() else "holds no MovieLens release"
    raise MovieLensNotFoundError(f"{folder}: {what}; a release folder holds the files of one of {held}")


def movielens_spec(release: str) -> FeatureSpec:
    """The shipped feature spec of a release's table (``movielens_100k.spec.toml``).

    Regression on ``rating``; roles ``user = "user_id"``, ``item = "movie_id"``, the user
    columns (100K and 1M only: the others have no users file) and ``item_columns =
    ["genres", "release_year"]``.

    Args:
        release: one of :data:`RELEASES`.

    Returns:
        The spec.

    Raises:
        ValueError: on an unknown release.

    Example:
        >>> movielens_spec("100k").user_columns, movielens_spec("latest").user_columns
        (('age', 'gender', 'occupation', 'zip_code'), ())
    """
    if release not in RELEASES:
        raise ValueError(f"`release` must be one of {', '.join(RELEASES)}. Received: release={release!r}")
    with resources.as_file(resources.files(__package__).joinpath(SPEC_FILE)) as path:
        spec = load_feature_spec(path)
    if release in ("100k", "1m"):
        return spec
    columns = tuple(c for c in spec.columns if c.name not in USER_COLUMNS)
    return dataclasses.replace(spec, columns=columns, user_columns=())


def _locate(name: str, release: str, folder_names: Sequence[str], data_dir: str | Path | None, download: bool) -> Path:
    if release == "100k":
        return locate_movielens(data_dir, download=download)
    places: list[tuple[str, Path]] = []
    if data_dir is not None:
        places.append(("--data-dir", Path(data_dir)))
    elif os.environ.get(DATA_ENV_VAR):
        places.append((f"${DATA_ENV_VAR}", Path(os.environ[DATA_ENV_VAR])))
    else:
        places.append(("the cache", default_cache_dir()))
    for _, place in places:
        for folder in (place, *(place / n for n in folder_names)):
            if all((folder / f).is_file() for f in RELEASES[release]):
                return folder
    label, place = places[0]
    raise MovieLensNotFoundError(
        f"{_RELEASE_NAMES[release]} (--dataset {name}) not found: {label} {str(place)!r} is not the release's "
        f"folder and holds no {' or '.join(n + '/' for n in folder_names)}; a {_RELEASE_NAMES[release]} folder holds "
        f"{', '.join(RELEASES[release])}. Unpack GroupLens' zip (https://grouplens.org/datasets/movielens/) and "
        f"give --data-dir, or set {DATA_ENV_VAR} to the folder holding it"
    )


# --------------------------------------------------------------------------- reading


def _read_release(folder: Path, release: str) -> tuple[pa.Table, Ratings | None]:
    if release == "100k":
        ratings = load_movielens(folder)
        return _table_100k(ratings), ratings
    if release == "latest":
        columns = _read_ratings(folder / "ratings.csv", header=True)
        movies = _read_movies_csv(folder / "movies.csv")
        users = None
    else:
        columns = _read_ratings(folder / "ratings.dat", header=False)
        movies = _read_movies_dat(folder / "movies.dat")
        users = _read_users_dat(folder / "users.dat") if release == "1m" else None
    ratings_file = folder / ("ratings.csv" if release == "latest" else "ratings.dat")
    first_line = 2 if release == "latest" else 1
    table: dict[str, pa.Array] = {name: pa.array(values) for name, values in columns.items()}
    if users is not None:
        user_row = _lookup(ratings_file, first_line, users.pop("_ids"), columns["user_id"], "user id", "users.dat")
        table.update({name: values.take(user_row) for name, values in users.items()})
    movie_file = "movies.csv" if release == "latest" else "movies.dat"
    movie_row = _lookup(ratings_file, first_line, movies.pop("_ids"), columns["movie_id"], "movie id", movie_file)
    table.update({name: values.take(movie_row) for name, values in movies.items()})
    return pa.table(table), None


def _table_100k(ratings: Ratings) -> pa.Table:
    """The parsed 100K ratings as the source's table (u.data's order)."""
    genre_names = np.asarray(ratings.genre_names, dtype=object)
    rows, flags = np.nonzero(ratings.genres)
    offsets = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=len(ratings))))).astype(np.int32)
    genres = pa.ListArray.from_arrays(pa.array(offsets), pa.array(genre_names[flags].tolist(), type=pa.string()))
    return pa.table(
        {
            "user_id": pa.array(ratings.user_id),
            "movie_id": pa.array(ratings.movie_id),
            "rating": pa.array(ratings.user_rating.astype(np.float64)),
            "timestamp": pa.array(ratings.timestamp),
            "age": pa.array(ratings.bucketized_user_age),
            "gender": pa.array(np.where(ratings.user_gender == 1, "M", "F").tolist(), type=pa.string()),
            "occupation": pa.array(ratings.user_occupation_text.tolist(), type=pa.string()),
            "zip_code": pa.array(ratings.user_zip_code.tolist(), type=pa.string()),
            "title": pa.array(ratings.title.tolist(), type=pa.string()),
            "genres": genres,
            "release_year": pa.array(ratings.release_year, mask=ratings.release_year == 0),
        }
    )


def _located(path: Path, line: int, problem: str, text: str) -> str:
    return f"{path}:{line}: {problem}; line: {text!r}"


def _lines(path: Path) -> list[str]:
    """The file's lines (UTF-8, else latin-1 as 1M's movies.dat is), split on newlines only."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    text = text.replace("\r\n", "\n").rstrip("\n")
    if not text:
        raise MovieLensFormatError(f"{path}:1: file is empty")
    return text.split("\n")


def _read_ratings(path: Path, *, header: bool) -> dict[str, np.ndarray]:
    """``ratings.dat`` (``u::m::r::t``) or ``ratings.csv`` (with its header), through Arrow's CSV reader.

    A file Arrow refuses is read again line by line to name the first bad line.
    """
    raw = path.read_bytes().replace(b"\r\n", b"\n").rstrip(b"\n")
    separator = "," if header else "::"
    if not raw:
        raise MovieLensFormatError(f"{path}:1: file is empty")
    first_line = 1
    if header:
        head, _, raw = raw.partition(b"\n")
        if head.decode("latin-1").strip() != _CSV_RATINGS_HEADER:
            raise MovieLensFormatError(
                _located(path, 1, f"the header must be {_CSV_RATINGS_HEADER!r}", head.decode("latin-1"))
            )
        first_line = 2
        if not raw:
            raise MovieLensFormatError(f"{path}:2: no ratings after the header")
    body = raw if header else raw.replace(b"::", b"\t")
    names = ["user_id", "movie_id", "rating", "timestamp"]
    types = {"user_id": pa.int64(), "movie_id": pa.int64(), "rating": pa.float64(), "timestamp": pa.int64()}
    try:
        table = pacsv.read_csv(
            pa.py_buffer(body),
            read_options=pacsv.ReadOptions(column_names=names),
            parse_options=pacsv.ParseOptions(
                delimiter="," if header else "\t", quote_char=False, ignore_empty_lines=False
            ),
            convert_options=pacsv.ConvertOptions(column_types=types, null_values=[], strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise _first_bad_rating(path, separator, first_line, error) from None
    columns = {name: table.column(name).to_numpy() for name in names}
    rating = columns["rating"]
    outside = np.flatnonzero(~((rating >= _MIN_RATING) & (rating <= _MAX_RATING)))
    if len(outside):
        line = int(outside[0]) + first_line
        raise MovieLensFormatError(
            _located(path, line, f"rating must be {_MIN_RATING}..{_MAX_RATING:g}, found {float(rating[outside[0]])!r}",
                     _lines(path)[line - 1])
        )  # fmt: skip
    return columns


def _first_bad_rating(path: Path, separator: str, first_line: int, error: Exception) -> MovieLensFormatError:
    """The first line of a ratings file that is not four numbers, as an error naming it."""
    lines = _lines(path)
    for line in range(first_line, len(lines) + 1):
        text = lines[line - 1]
        fields = text.split(separator)
        if len(fields) != len(_RATING_NAMES):
            problem = f"expected {len(_RATING_NAMES)} {separator!r}-separated fields, found {len(fields)}"
            return MovieLensFormatError(_located(path, line, problem, text))
        for column, value in zip(_RATING_NAMES, fields, strict=True):
            if column == "rating":
                try:
                    float(value)
                    continue
                except ValueError:
                    pass
            elif _INT.fullmatch(value):
                continue
            kind = "a number" if column == "rating" else "an integer"
            return MovieLensFormatError(_located(path, line, f"{column} must be {kind}, found {value!r}", text))
    return MovieLensFormatError(f"{path}: cannot read the ratings: {str(error).splitlines()[0]}")


def _movie_columns(path: Path, ids: list[int], titles: list[str], genres: list[list[str]]) -> dict[str, pa.Array]:
    years = [None if (m := _TITLE_YEAR.search(t)) is None else int(m.group(1)) for t in titles]
    order = np.argsort(np.asarray(ids, dtype=np.int64), kind="stable")
    take = pa.array(order)
    return {
        "_ids": pa.array(np.asarray(ids, dtype=np.int64)[order]),
        "title": pa.array(titles, type=pa.string()).take(take),
        "genres": pa.array(genres, type=pa.list_(pa.string())).take(take),
        "release_year": pa.array(years, type=pa.int64()).take(take),
    }


def _movie_id(path: Path, line: int, text: str, value: str, seen: dict[int, int]) -> int:
    if not _INT.fullmatch(value):
        raise MovieLensFormatError(_located(path, line, f"movie id must be an integer, found {value!r}", text))
    movie_id = int(value)
    if movie_id in seen:
        raise MovieLensFormatError(
            _located(path, line, f"movie id {movie_id} already defined on line {seen[movie_id]}", text)
        )
    seen[movie_id] = line
    return movie_id


def _genre_list(text: str) -> list[str]:
    return [] if text == _NO_GENRES else [g for g in text.split("|") if g]


def _read_movies_dat(path: Path) -> dict[str, pa.Array]:
    """``movies.dat``: ``id::Title (Year)::Genre|Genre``; columns sorted by movie id."""
    ids, titles, genres = [], [], []
    seen: dict[int, int] = {}
    for line, text in enumerate(_lines(path), start=1):
        fields = text.split("::")
        if len(fields) != 3:
            raise MovieLensFormatError(
                _located(path, line, f"expected 3 '::'-separated fields, found {len(fields)}", text)
            )
        ids.append(_movie_id(path, line, text, fields[0], seen))
        titles.append(fields[1])
        genres.append(_genre_list(fields[2]))
    return _movie_columns(path, ids, titles, genres)


def _read_movies_csv(path: Path) -> dict[str, pa.Array]:
    """``movies.csv``: a ``movieId,title,genres`` header, then quoted CSV rows; columns sorted by movie id."""
    lines = _lines(path)
    reader = csv.reader(lines, strict=True)
    ids, titles, genres = [], [], []
    seen: dict[int, int] = {}
    try:
        for fields in reader:
            line = reader.line_num
            text = lines[line - 1]
            if line == 1:
                if fields != _CSV_MOVIES_HEADER:
                    raise MovieLensFormatError(
                        _located(path, 1, f"the header must be {','.join(_CSV_MOVIES_HEADER)!r}", text)
                    )
                continue
            if len(fields) != 3:
                raise MovieLensFormatError(
                    _located(path, line, f"expected 3 comma-separated fields, found {len(fields)}", text)
                )
            ids.append(_movie_id(path, line, text, fields[0], seen))
            titles.append(fields[1])
            genres.append(_genre_list(fields[2]))
    except csv.Error as error:
        line = reader.line_num
        raise MovieLensFormatError(_located(path, line, f"malformed CSV ({error})", lines[line - 1])) from None
    return _movie_columns(path, ids, titles, genres)


def _read_users_dat(path: Path) -> dict[str, pa.Array]:
    """1M's ``users.dat``: ``id::M|F::age bucket::occupation code::zip``; columns sorted by user id."""
    ids, ages, genders, occupations, zip_codes = [], [], [], [], []
    seen: dict[int, int] = {}
    for line, text in enumerate(_lines(path), start=1):
        fields = text.split("::")
        if len(fields) != 5:
            raise MovieLensFormatError(
                _located(path, line, f"expected 5 '::'-separated fields, found {len(fields)}", text)
            )
        user, gender, age, occupation, zip_code = fields
        if not _INT.fullmatch(user):
            raise MovieLensFormatError(_located(path, line, f"user id must be an integer, found {user!r}", text))
        if int(user) in seen:
            raise MovieLensFormatError(
                _located(path, line, f"user id {int(user)} already defined on line {seen[int(user)]}", text)
            )
        seen[int(user)] = line
        if gender not in ("M", "F"):
            raise MovieLensFormatError(_located(path, line, f"gender must be 'M' or 'F', found {gender!r}", text))
        if not _INT.fullmatch(age) or int(age) not in AGE_BUCKETS:
            buckets = ", ".join(map(str, AGE_BUCKETS))
            raise MovieLensFormatError(_located(path, line, f"age must be one of {buckets}, found {age!r}", text))
        if not _INT.fullmatch(occupation) or not 0 <= int(occupation) < len(_OCCUPATIONS_1M):
            raise MovieLensFormatError(
                _located(
                    path, line, f"occupation must be a code 0..{len(_OCCUPATIONS_1M) - 1}, found {occupation!r}", text
                )
            )
        if not zip_code:
            raise MovieLensFormatError(_located(path, line, "zip code is empty", text))
        ids.append(int(user))
        ages.append(int(age))
        genders.append(gender)
        occupations.append(_OCCUPATIONS_1M[int(occupation)])
        zip_codes.append(zip_code)
    order = pa.array(np.argsort(np.asarray(ids, dtype=np.int64), kind="stable"))
    return {
        "_ids": pa.array(ids, type=pa.int64()).take(order),
        "age": pa.array(ages, type=pa.int64()).take(order),
        "gender": pa.array(genders, type=pa.string()).take(order),
        "occupation": pa.array(occupations, type=pa.string()).take(order),
        "zip_code": pa.array(zip_codes, type=pa.string()).take(order),
    }


def _lookup(path: Path, first_line: int, ids: pa.Array, wanted: np.ndarray, column: str, source: str) -> pa.Array:
    """Positions of `wanted` in the sorted `ids`; an id missing from `source` is an error naming the rating's line."""
    known = ids.to_numpy()
    if len(known) == 0:
        raise MovieLensFormatError(f"{path.parent / source}: holds no {column.split()[0]}s")
    position = np.minimum(np.searchsorted(known, wanted), len(known) - 1)
    unknown = np.flatnonzero(known[position] != wanted)
    if len(unknown):
        line = int(unknown[0]) + first_line
        raise MovieLensFormatError(
            _located(path, line, f"{column} {int(wanted[unknown[0]])} is not in {source}", _lines(path)[line - 1])
        )
    return pa.array(position)
