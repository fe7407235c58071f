"""Find MovieLens 100K on disk (or fetch it) and parse its files strictly into :class:`Ratings`.

Files read (GroupLens' format, see the dataset's README):

- ``u.data``: ``user id <TAB> item id <TAB> rating <TAB> timestamp``
- ``u.user``: ``user id | age | gender | occupation | zip code``
- ``u.item`` (latin-1): ``movie id | title | release date | video release date | URL |``
  followed by 19 genre flags ``0``/``1``
- ``u.genre`` (optional): ``name | index``
- ``u1..u5.base/.test``, ``ua/ub.base/.test``: the same format as ``u.data``

A line that breaks the format raises :class:`MovieLensFormatError` whose message starts
with ``"{path}:{line}: "`` and quotes the line; nothing is ever silently replaced by 0.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from dcnrank.data.sources.checksums import (
    MOVIELENS_100K_SHA256,
    MOVIELENS_100K_URL,
    verify_checksums,
)
from dcnrank.data.sources.download import default_cache_dir, download_movielens, install_movielens_zip
from dcnrank.data.sources.errors import (
    MovieLensDownloadError,
    MovieLensFormatError,
    MovieLensNotFoundError,
)
from dcnrank.data.sources.ratings import GENRE_NAMES, Ratings, bucketize_age

__all__ = [
    "DATA_ENV_VAR",
    "MOVIELENS_100K_SHA256",
    "MOVIELENS_100K_URL",
    "SPLIT_FILE_NAMES",
    "load_movielens",
    "locate_movielens",
    "read_split_file",
]

logger = logging.getLogger(__name__)

DATA_ENV_VAR = "DCNRANK_DATA"

_FOLDER_NAME = "ml-100k"
_REQUIRED_FILES = ("u.data", "u.user", "u.item")
SPLIT_FILE_NAMES: tuple[str, ...] = tuple(
    f"{prefix}.{part}"
    for prefix in ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
    for part in ("base", "test")
)
_RATING_COLUMNS = ("user id", "item id", "rating", "timestamp")
_MAX_DIGITS = 18  # every 18-digit decimal fits in int64
_DIGITS = re.compile(r"[0-9]+")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_RELEASE_DATE = re.compile(r"(\d{1,2})-(" + "|".join(_MONTHS) + r")-(\d{4})")
_GENDERS = {"M": 1, "F": 0}


# --------------------------------------------------------------------------- locating


def locate_movielens(
    data_dir: str | Path | None = None,
    *,
    download: bool = True,
    cache_dir: str | Path | None = None,
    url: str = MOVIELENS_100K_URL,
    expected_sha256: Mapping[str, str] | None = None,
    progress: bool = False,
) -> Path:
    """Return the folder holding ``u.data``, ``u.user`` and ``u.item``.

    Looks, in order, at:

    1. ``data_dir``: a folder that is ``ml-100k/`` itself, or holds ``ml-100k/`` or
       ``ml-100k.zip`` (a zip is verified and extracted into the cache); a path to the
       zip itself is accepted too;
    2. ``$DCNRANK_DATA``: read the same way (normally a folder holding ``ml-100k/``);
    3. the cache ``<cache_dir>/ml-100k`` (default cache: ``$XDG_CACHE_HOME/dcnrank`` or
       ``~/.cache/dcnrank``);
    4. a download from ``url`` into the cache, when ``download`` is true.

    A ``data_dir`` or ``$DCNRANK_DATA`` that is given but holds no data is an error, not a
    reason to download.

    Args:
        data_dir: an explicit location (the CLI's ``--data-dir``), or None.
        download: fetch the archive when nothing is found.
        cache_dir: the cache folder (default: :func:`default_cache_dir`).
        url: where to download from (default: GroupLens).
        expected_sha256: file name -> SHA-256 required of downloaded or extracted files
            (default: the original MovieLens 100K sums). Folders given by the user are
            not hashed; the parser checks them.
        progress: show a download progress bar.

    Returns:
        The folder holding the MovieLens files.

    Raises:
        MovieLensNotFoundError: if the data is nowhere and could not be downloaded; the
            message lists the three ways to provide it and, if a download failed, why.
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    explicit = [("data_dir", data_dir)]
    env_value = os.environ.get(DATA_ENV_VAR, "")
    if env_value:
        explicit.append((f"${DATA_ENV_VAR}", env_value))
    for label, location in explicit:
        if location is None:
            continue
        found = _resolve(Path(location), cache, expected_sha256)
        if found is None:
            raise MovieLensNotFoundError(
                _not_found_message(
                    url,
                    cache,
                    f"{label}={str(location)!r} holds neither u.data, u.user, u.item "
                    f"nor {_FOLDER_NAME}/ nor {_FOLDER_NAME}.zip",
                )
            )
        logger.debug("MovieLens found via %s: %s", label, found)
        return found
    cached = cache / _FOLDER_NAME
    if _has_required_files(cached):
        return cached
    if not download:
        raise MovieLensNotFoundError(
            _not_found_message(url, cache, f"nothing in {cached} and download=False")
        )
    try:
        return download_movielens(
            cache, url=url, expected_sha256=expected_sha256, progress=progress
        )
    except OSError as error:  # MovieLensDownloadError, or an unwritable cache
        raise MovieLensNotFoundError(
            _not_found_message(url, cache, f"nothing in {cached} and the download failed: {error}")
        ) from error


def _resolve(location: Path, cache: Path, expected_sha256: Mapping[str, str] | None) -> Path | None:
    """Return the data folder that ``location`` denotes, extracting a zip if needed."""
    for folder in (location, location / _FOLDER_NAME):
        if _has_required_files(folder):
            return folder
    archive = location if location.is_file() else location / f"{_FOLDER_NAME}.zip"
    if not archive.is_file():
        return None
    cached = cache / _FOLDER_NAME
    if _has_required_files(cached):
        try:
            verify_checksums(
                cached, MOVIELENS_100K_SHA256 if expected_sha256 is None else expected_sha256
            )
            return cached
        except MovieLensDownloadError:
            logger.info("cached copy %s is stale; re-extracting %s", cached, archive)
    return install_movielens_zip(archive, cache, expected_sha256=expected_sha256)


def _has_required_files(folder: Path) -> bool:
    return all((folder / name).is_file() for name in _REQUIRED_FILES)


def _not_found_message(url: str, cache: Path, reason: str) -> str:
    return (
        f"MovieLens 100K not found: {reason}.\n"
        "Provide it in one of three ways:\n"
        f"  1. --data-dir PATH (data_dir=PATH): a folder that is {_FOLDER_NAME}/ or holds "
        f"{_FOLDER_NAME}/ or {_FOLDER_NAME}.zip;\n"
        f"  2. the environment variable {DATA_ENV_VAR}=PATH, a folder holding {_FOLDER_NAME}/;\n"
        f"  3. the cache {cache / _FOLDER_NAME}: let dcnrank download {url} there "
        "(download=True), or unpack the zip there yourself."
    )


# --------------------------------------------------------------------------- parsing


def load_movielens(folder: str | Path) -> Ratings:
    """Parse ``u.data``, ``u.user``, ``u.item`` (and ``u.genre`` if present) into :class:`Ratings`.

    Rows keep ``u.data``'s file order.

    Args:
        folder: the folder holding the files (see :func:`locate_movielens`).

    Returns:
        The ratings joined with their user's and movie's attributes.

    Raises:
        MovieLensNotFoundError: if a required file is missing.
        MovieLensFormatError: if a line breaks the format (wrong field count, a non-integer
            id, a rating outside 1..5, a gender other than M/F, a bad release date or genre
            flag, a duplicate id, or a rating of an unknown user or movie); the message is
            ``"{path}:{line}: {problem}; line: {text!r}"``.
    """
    folder = Path(folder)
    missing = [name for name in _REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise MovieLensNotFoundError(
            f"{folder}: missing MovieLens file(s) {', '.join(missing)}; a MovieLens 100K "
            f"folder holds {', '.join(_REQUIRED_FILES)}"
        )
    genre_names = (
        _read_genres(folder / "u.genre") if (folder / "u.genre").is_file() else GENRE_NAMES
    )
    users = _read_users(folder / "u.user")
    movies = _read_movies(folder / "u.item")
    table = _read_int_table(folder / "u.data", _RATING_COLUMNS)
    user_id, movie_id, rating, timestamp = table.T
    path = folder / "u.data"
    _check_ratings(path, rating)
    user_row = _lookup(path, users["user_id"], user_id, "user id", "u.user")
    movie_row = _lookup(path, movies["movie_id"], movie_id, "item id", "u.item")
    logger.debug(
        "parsed %d ratings, %d users, %d movies from %s",
        len(table),
        len(users["user_id"]),
        len(movies["movie_id"]),
        folder,
    )
    return Ratings(
        movie_id=movie_id.copy(),
        user_id=user_id.copy(),
        user_gender=users["gender"][user_row],
        bucketized_user_age=bucketize_age(users["age"])[user_row],
        user_zip_code=users["zip_code"][user_row],
        user_occupation_text=users["occupation"][user_row],
        user_rating=rating.astype(np.float32),
        timestamp=timestamp.copy(),
        title=movies["title"][movie_row],
        genres=movies["genres"][movie_row],
        release_year=movies["release_year"][movie_row],
        genre_names=genre_names,
    )


def read_split_file(folder: str | Path, name: str, ratings: Ratings | None = None) -> np.ndarray:
    """Read one of GroupLens' split files and return its rows as indices into ``ratings``.

    Each line is matched to the rating with the same (user id, item id, timestamp); its
    rating value must agree with ``u.data``.

    Args:
        folder: the MovieLens folder.
        name: one of ``u1.base``, ``u1.test``, ..., ``u5.test``, ``ua.base``, ..., ``ub.test``.
        ratings: the table to index into (default: ``load_movielens(folder)``).

    Returns:
        int64 row indices into ``ratings``, in the split file's line order.

    Raises:
        ValueError: if ``name`` is not a split file name; the message lists the valid ones.
        MovieLensNotFoundError: if the file is missing.
        MovieLensFormatError: if a line is malformed, repeats an earlier line, names a
            rating absent from ``ratings`` or disagrees with its rating value.
    """
    if name not in SPLIT_FILE_NAMES:
        raise ValueError(
            f"`name` must be one of {', '.join(SPLIT_FILE_NAMES)}. Received: name={name!r}"
        )
    folder = Path(folder)
    path = folder / name
    if not path.is_file():
        raise MovieLensNotFoundError(f"{path}: MovieLens split file not found")
    if ratings is None:
        ratings = load_movielens(folder)
    table = _read_int_table(path, _RATING_COLUMNS)
    known = np.stack([ratings.user_id, ratings.movie_id, ratings.timestamp], axis=1)
    wanted = table[:, [0, 1, 3]]
    order, found = _match_rows(known, wanted)
    if not found.all():
        line = int(np.flatnonzero(~found)[0]) + 1
        raise MovieLensFormatError(
            _located(path, line, "no rating with this (user id, item id, timestamp) in u.data")
        )
    rows = order.astype(np.int64)
    differs = ratings.user_rating[rows] != table[:, 2]
    if differs.any():
        line = int(np.flatnonzero(differs)[0]) + 1
        raise MovieLensFormatError(
            _located(
                path,
                line,
                f"rating {table[line - 1, 2]} differs from u.data's "
                f"{int(ratings.user_rating[rows[line - 1]])}",
            )
        )
    _, first = np.unique(rows, return_index=True)
    if len(first) != len(rows):
        repeated = np.setdiff1d(np.arange(len(rows)), first)
        line = int(repeated[0]) + 1
        raise MovieLensFormatError(_located(path, line, "this rating is listed twice"))
    return rows


def _match_rows(known: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the first row of ``known`` equal to each row of ``wanted``, and a found mask."""
    if len(known) == 0:
        return np.zeros(len(wanted), dtype=np.int64), np.zeros(len(wanted), dtype=bool)
    key = np.dtype((np.void, known.shape[1] * 8))
    known_keys = np.ascontiguousarray(known, dtype=np.int64).view(key).ravel()
    wanted_keys = np.ascontiguousarray(wanted, dtype=np.int64).view(key).ravel()
    # Byte order is not numeric order, but equal rows still sort next to each other.
    order = np.argsort(known_keys, kind="stable")
    sorted_keys = known_keys[order]
    position = np.minimum(np.searchsorted(sorted_keys, wanted_keys), len(order) - 1)
    return order[position], sorted_keys[position] == wanted_keys


def _located(path: Path, line: int, problem: str, text: str | None = None) -> str:
    """Format an error as ``"{path}:{line}: {problem}; line: {text!r}"``."""
    if text is None:
        text = _line_text(path, line)
    return f"{path}:{line}: {problem}; line: {text!r}"


def _line_text(path: Path, line: int) -> str:
    lines = _split_lines(path.read_bytes())
    return lines[line - 1] if 0 < line <= len(lines) else ""


def _split_lines(raw: bytes) -> list[str]:
    # Split on "\n" only: str.splitlines would also split latin-1 "\x85" and "\x1c".
    text = raw.decode("latin-1").replace("\r\n", "\n").rstrip("\n")
    return text.split("\n") if text else []


def _read_lines(path: Path) -> list[str]:
    lines = _split_lines(path.read_bytes())
    if not lines:
        raise MovieLensFormatError(f"{path}:1: file is empty")
    return lines


def _read_int_table(path: Path, columns: Sequence[str]) -> np.ndarray:
    """Parse a tab-separated table of non-negative integers into an int64 ``(n, k)`` array.

    The check is vectorized over the bytes; only the first bad line is diagnosed in Python.
    """
    raw = path.read_bytes().replace(b"\r\n", b"\n").rstrip(b"\n")
    if not raw:
        raise MovieLensFormatError(f"{path}:1: file is empty")
    width = len(columns)
    buf = np.frombuffer(raw, dtype=np.uint8)
    newline = buf == ord("\n")
    tab = buf == ord("\t")
    separator = newline | tab
    line_of_byte = np.cumsum(newline) - newline  # the newline belongs to the line it ends
    n_lines = int(newline.sum()) + 1
    bad = np.zeros(n_lines, dtype=bool)
    bad[line_of_byte[~(separator | ((buf >= ord("0")) & (buf <= ord("9"))))]] = True
    bad |= np.bincount(line_of_byte[tab], minlength=n_lines) != width - 1
    # Empty fields: a separator at the start or end, or two separators in a row.
    empty = separator & np.concatenate(([True], separator[:-1]))
    bad[line_of_byte[empty]] = True
    bad[-1] |= bool(separator[-1])
    # Fields too long for int64.
    boundaries = np.concatenate(([-1], np.flatnonzero(separator), [len(buf)]))
    too_long = np.flatnonzero(np.diff(boundaries) - 1 > _MAX_DIGITS)
    bad[line_of_byte[boundaries[too_long] + 1]] = True
    if bad.any():
        line = int(np.flatnonzero(bad)[0]) + 1
        text = _split_lines(raw)[line - 1]
        raise MovieLensFormatError(_located(path, line, _diagnose(text, columns), text))
    values = np.fromstring(raw.decode("ascii"), dtype=np.int64, sep=" ")
    if values.size != n_lines * width:  # cannot happen after the checks above
        raise MovieLensFormatError(
            f"{path}: parsed {values.size} integers, expected {n_lines * width}"
        )
    return values.reshape(n_lines, width)


def _diagnose(text: str, columns: Sequence[str]) -> str:
    """Say what is wrong with one line of a tab-separated integer table."""
    fields = text.split("\t")
    if len(fields) != len(columns):
        return f"expected {len(columns)} tab-separated fields, found {len(fields)}"
    for column, field in zip(columns, fields, strict=True):
        if not _DIGITS.fullmatch(field):
            return f"{column} must be a non-negative integer, found {field!r}"
        if len(field) > _MAX_DIGITS:
            return f"{column} has more than {_MAX_DIGITS} digits, found {field!r}"
    return "malformed line"  # unreachable for lines the vectorized check flags


def _parse_int(path: Path, line: int, text: str, column: str, field: str) -> int:
    if not _DIGITS.fullmatch(field) or len(field) > _MAX_DIGITS:
        raise MovieLensFormatError(
            _located(path, line, f"{column} must be a non-negative integer, found {field!r}", text)
        )
    return int(field)


def _split_fields(path: Path, line: int, text: str, count: int) -> list[str]:
    fields = text.split("|")
    if len(fields) != count:
        raise MovieLensFormatError(
            _located(
                path, line, f"expected {count} '|'-separated fields, found {len(fields)}", text
            )
        )
    return fields


def _check_unique(path: Path, line: int, text: str, column: str, value: int, seen: dict) -> None:
    if value in seen:
        raise MovieLensFormatError(
            _located(path, line, f"{column} {value} already defined on line {seen[value]}", text)
        )
    seen[value] = line


def _read_users(path: Path) -> dict[str, np.ndarray]:
    """Parse ``u.user``; the returned columns are sorted by user id."""
    ids, ages, genders, occupations, zip_codes = [], [], [], [], []
    seen: dict[int, int] = {}
    for line, text in enumerate(_read_lines(path), start=1):
        user_id, age, gender, occupation, zip_code = _split_fields(path, line, text, 5)
        user_id_value = _parse_int(path, line, text, "user id", user_id)
        _check_unique(path, line, text, "user id", user_id_value, seen)
        ages.append(_parse_int(path, line, text, "age", age))
        if gender not in _GENDERS:
            raise MovieLensFormatError(
                _located(path, line, f"gender must be 'M' or 'F', found {gender!r}", text)
            )
        for column, value in (("occupation", occupation), ("zip code", zip_code)):
            if not value:
                raise MovieLensFormatError(_located(path, line, f"{column} is empty", text))
        ids.append(user_id_value)
        genders.append(_GENDERS[gender])
        occupations.append(occupation)
        zip_codes.append(zip_code)
    order = np.argsort(np.asarray(ids, dtype=np.int64), kind="stable")
    return {
        "user_id": np.asarray(ids, dtype=np.int64)[order],
        "age": np.asarray(ages, dtype=np.int64)[order],
        "gender": np.asarray(genders, dtype=np.int64)[order],
        "occupation": np.asarray(occupations, dtype=np.str_)[order],
        "zip_code": np.asarray(zip_codes, dtype=np.str_)[order],
    }


def _read_movies(path: Path) -> dict[str, np.ndarray]:
    """Parse ``u.item`` (latin-1); the returned columns are sorted by movie id."""
    n_genres = len(GENRE_NAMES)
    ids, titles, years, genres = [], [], [], []
    seen: dict[int, int] = {}
    for line, text in enumerate(_read_lines(path), start=1):
        fields = _split_fields(path, line, text, 5 + n_genres)
        movie_id = _parse_int(path, line, text, "movie id", fields[0])
        _check_unique(path, line, text, "movie id", movie_id, seen)
        release = fields[2]
        match = _RELEASE_DATE.fullmatch(release)
        if release and (match is None or not 1 <= int(match.group(1)) <= 31):
            raise MovieLensFormatError(
                _located(
                    path, line, f"release date must look like 01-Jan-1995, found {release!r}", text
                )
            )
        flags = fields[5:]
        for index, flag in enumerate(flags):
            if flag not in ("0", "1"):
                raise MovieLensFormatError(
                    _located(
                        path, line, f"genre flag {index + 1} must be 0 or 1, found {flag!r}", text
                    )
                )
        ids.append(movie_id)
        titles.append(fields[1])
        years.append(int(match.group(3)) if match else 0)
        genres.append([flag == "1" for flag in flags])
    order = np.argsort(np.asarray(ids, dtype=np.int64), kind="stable")
    return {
        "movie_id": np.asarray(ids, dtype=np.int64)[order],
        "title": np.asarray(titles, dtype=np.str_)[order],
        "release_year": np.asarray(years, dtype=np.int64)[order],
        "genres": np.asarray(genres, dtype=np.bool_).reshape(len(ids), n_genres)[order],
    }


def _read_genres(path: Path) -> tuple[str, ...]:
    """Parse ``u.genre``: ``name|index`` lines with indices 0, 1, 2, ... in order."""
    names = []
    for line, text in enumerate(_read_lines(path), start=1):
        name, index = _split_fields(path, line, text, 2)
        if _parse_int(path, line, text, "genre index", index) != line - 1:
            raise MovieLensFormatError(
                _located(path, line, f"genre index must be {line - 1}, found {index!r}", text)
            )
        if not name:
            raise MovieLensFormatError(_located(path, line, "genre name is empty", text))
        names.append(name)
    if len(names) != len(GENRE_NAMES):
        raise MovieLensFormatError(
            f"{path}:{len(names)}: expected {len(GENRE_NAMES)} genres (one per genre flag of "
            f"u.item), found {len(names)}"
        )
    return tuple(names)


def _check_ratings(path: Path, rating: np.ndarray) -> None:
    outside = np.flatnonzero((rating < 1) | (rating > 5))
    if len(outside):
        line = int(outside[0]) + 1
        raise MovieLensFormatError(
            _located(path, line, f"rating must be 1..5, found {int(rating[line - 1])}")
        )


def _lookup(
    path: Path, ids: np.ndarray, wanted: np.ndarray, column: str, source: str
) -> np.ndarray:
    """Positions of ``wanted`` in the sorted ``ids``; an id missing from ``source`` is an error."""
    position = np.minimum(np.searchsorted(ids, wanted), len(ids) - 1)
    unknown = np.flatnonzero(ids[position] != wanted)
    if len(unknown):
        line = int(unknown[0]) + 1
        raise MovieLensFormatError(
            _located(path, line, f"{column} {int(wanted[line - 1])} is not in {source}")
        )
    return position
