"""Tests for dcnrank.data.sources.movielens_100k and dcnrank.data.sources.ratings: locating, strict parsing, splits."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_GENRES, TINY_RATINGS, rating_lines, write_tiny_movielens

from dcnrank.data import (
    GENRE_NAMES,
    MOVIELENS_100K_SHA256,
    MovieLensFormatError,
    MovieLensNotFoundError,
    Ratings,
    bucketize_age,
    load_movielens,
    locate_movielens,
    read_split_file,
    sha256_file,
)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DCNRANK_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def _set_line(path: Path, number: int, text: str | None) -> None:
    """Replace (or with None, delete) 1-based line ``number`` of ``path``."""
    lines = path.read_bytes().decode("latin-1").split("\n")
    if text is None:
        del lines[number - 1]
    else:
        lines[number - 1] = text
    path.write_bytes("\n".join(lines).encode("latin-1"))


def _sums(folder: Path) -> dict[str, str]:
    return {name: sha256_file(folder / name) for name in ("u.data", "u.user", "u.item")}


def _zip_folder(folder: Path, zip_path: Path) -> Path:
    with zipfile.ZipFile(zip_path, "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, f"ml-100k/{path.name}")
    return zip_path


# --------------------------------------------------------------------------- parsing


def test_load_tiny_columns(tiny_movielens_dir: Path) -> None:
    ratings = load_movielens(tiny_movielens_dir)
    assert len(ratings) == 6
    assert ratings.user_id.tolist() == [r[0] for r in TINY_RATINGS]  # u.data order
    assert ratings.movie_id.tolist() == [r[1] for r in TINY_RATINGS]
    assert ratings.user_rating.tolist() == [5.0, 3.0, 4.0, 1.0, 2.0, 5.0]
    assert ratings.timestamp.tolist() == [r[3] for r in TINY_RATINGS]
    assert ratings.user_gender.tolist() == [1, 1, 0, 0, 1, 1]
    assert ratings.bucketized_user_age.tolist() == [18, 18, 50, 50, 1, 1]
    assert ratings.user_zip_code.tolist() == ["85711", "85711", "94043", "94043", "T8H1N"] * 1 + ["T8H1N"]
    assert ratings.user_occupation_text.tolist()[2:5] == ["other", "other", "student"]
    assert ratings.title.tolist()[3:5] == ["unknown", "Café Society (1995)"]  # latin-1
    assert ratings.release_year.tolist() == [1995, 1995, 1995, 0, 1995, 1995]
    assert ratings.genres.shape == (6, 19)
    assert np.flatnonzero(ratings.genres[1]).tolist() == [1, 2]
    assert ratings.genre_names == tuple(TINY_GENRES)


def test_load_tiny_dtypes(tiny_movielens_dir: Path) -> None:
    ratings = load_movielens(tiny_movielens_dir)
    expected = {
        "movie_id": np.int64,
        "user_id": np.int64,
        "user_gender": np.int64,
        "bucketized_user_age": np.int64,
        "user_rating": np.float32,
        "timestamp": np.int64,
        "genres": np.bool_,
        "release_year": np.int64,
    }
    for name, dtype in expected.items():
        assert ratings.column(name).dtype == dtype, name
    for name in ("user_zip_code", "user_occupation_text", "title"):
        assert ratings.column(name).dtype.kind == "U", name


def test_feature_names_follow_the_tutorial() -> None:
    assert Ratings.feature_names == (
        "movie_id",
        "user_id",
        "user_gender",
        "bucketized_user_age",
        "user_zip_code",
        "user_occupation_text",
    )


def test_genre_names_default_without_u_genre(tiny_movielens_dir: Path) -> None:
    (tiny_movielens_dir / "u.genre").unlink()
    assert load_movielens(tiny_movielens_dir).genre_names == GENRE_NAMES


def test_crlf_line_endings_are_accepted(tiny_movielens_dir: Path) -> None:
    for name in ("u.data", "u.user", "u.item"):
        path = tiny_movielens_dir / name
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    ratings = load_movielens(tiny_movielens_dir)
    assert ratings.timestamp.tolist() == [r[3] for r in TINY_RATINGS]
    assert ratings.user_zip_code[-1] == "T8H1N"


def test_bucketize_age_edges() -> None:
    ages = np.array([0, 17, 18, 24, 25, 34, 35, 44, 45, 49, 50, 55, 56, 90])
    assert bucketize_age(ages).tolist() == [1, 1, 18, 18, 25, 25, 35, 35, 45, 45, 50, 50, 56, 56]


def test_take_keeps_order_and_columns(tiny_movielens_dir: Path) -> None:
    ratings = load_movielens(tiny_movielens_dir)
    subset = ratings.take(np.array([5, 0]))
    assert len(subset) == 2
    assert subset.timestamp.tolist() == [881250948, 881250949]
    assert subset.user_zip_code.tolist() == ["T8H1N", "85711"]
    assert subset.genres.shape == (2, 19)
    assert subset.genre_names == ratings.genre_names


def test_take_rejects_non_integer_indices(tiny_movielens_dir: Path) -> None:
    ratings = load_movielens(tiny_movielens_dir)
    with pytest.raises(ValueError, match=r"`indices` must be a 1-D integer.*float64"):
        ratings.take(np.array([0.0, 1.0]))


def test_columns_are_read_only(tiny_movielens_dir: Path) -> None:
    ratings = load_movielens(tiny_movielens_dir)
    with pytest.raises(ValueError, match="read-only"):
        ratings.user_id[0] = 7


def test_column_unknown_name_lists_valid_ones(tiny_movielens_dir: Path) -> None:
    ratings = load_movielens(tiny_movielens_dir)
    with pytest.raises(KeyError, match=r"unknown column 'zip'.*user_zip_code"):
        ratings.column("zip")


def test_ratings_rejects_misaligned_columns(tiny_movielens_dir: Path) -> None:
    ratings = load_movielens(tiny_movielens_dir)
    columns = {name: ratings.column(name) for name in Ratings.column_names()}
    with pytest.raises(ValueError, match=r"`timestamp` must have one entry per rating \(6 rows\)"):
        Ratings(**{**columns, "timestamp": columns["timestamp"][:5]})
    with pytest.raises(ValueError, match=r"`genres` must have shape \(6, 19\).*\(6, 3\)"):
        Ratings(**{**columns, "genres": columns["genres"][:, :3]})


# Each case: file, 1-based line, replacement text (None deletes the line), expected message.
_MALFORMED = [
    ("u.data", 2, "1\t2\t3", r"expected 4 tab-separated fields, found 3"),
    ("u.data", 2, "1\t2\t3\t4\t5", r"expected 4 tab-separated fields, found 5"),
    ("u.data", 3, "2\tx\t4\t881250951", r"item id must be a non-negative integer, found 'x'"),
    ("u.data", 3, "-2\t1\t4\t881250951", r"user id must be a non-negative integer, found '-2'"),
    ("u.data", 3, "2\t1\t4.5\t881250951", r"rating must be a non-negative integer, found '4.5'"),
    ("u.data", 3, "2\t\t4\t881250951", r"item id must be a non-negative integer, found ''"),
    ("u.data", 3, "2\t1\t4\t881250951\t", r"expected 4 tab-separated fields, found 5"),
    ("u.data", 3, "2 1 4 881250951", r"expected 4 tab-separated fields, found 1"),
    ("u.data", 3, "", r"expected 4 tab-separated fields, found 1"),
    ("u.data", 3, "2\t1\t4\t1234567890123456789", r"timestamp has more than 18 digits"),
    ("u.data", 4, "2\t3\t0\t881250952", r"rating must be 1..5, found 0"),
    ("u.data", 4, "2\t3\t6\t881250952", r"rating must be 1..5, found 6"),
    ("u.data", 5, "9\t4\t2\t881250953", r"user id 9 is not in u.user"),
    ("u.data", 5, "3\t9\t2\t881250953", r"item id 9 is not in u.item"),
    ("u.user", 2, "2|53|F|other", r"expected 5 '\|'-separated fields, found 4"),
    ("u.user", 2, "two|53|F|other|94043", r"user id must be a non-negative integer, found 'two'"),
    ("u.user", 2, "2|53.5|F|other|94043", r"age must be a non-negative integer, found '53.5'"),
    ("u.user", 2, "2|53|X|other|94043", r"gender must be 'M' or 'F', found 'X'"),
    ("u.user", 2, "2|53|f|other|94043", r"gender must be 'M' or 'F', found 'f'"),
    ("u.user", 2, "2|53|F||94043", r"occupation is empty"),
    ("u.user", 2, "2|53|F|other|", r"zip code is empty"),
    ("u.user", 3, "1|17|M|student|T8H1N", r"user id 1 already defined on line 1"),
    ("u.item", 3, "3|unknown|||", r"expected 24 '\|'-separated fields, found 5"),
    ("u.item", 3, "x|unknown||||" + "|".join("0" * 19), r"movie id must be a non-negative"),
    ("u.item", 3, "3|t|1995-01-01|||" + "|".join("0" * 19), r"release date must look like"),
    (
        "u.item",
        3,
        "3|t|45-Jan-1995|||" + "|".join("0" * 19),
        r"release date must look like 01-Jan-1995, found '45-Jan-1995'",
    ),
    (
        "u.item",
        3,
        "3|t|01-Foo-1995|||" + "|".join("0" * 19),
        r"release date must look like 01-Jan-1995, found '01-Foo-1995'",
    ),
    ("u.item", 3, "3|t||||2" + "|0" * 18, r"genre flag 1 must be 0 or 1, found '2'"),
    ("u.item", 3, "3|t||||" + "0|" * 18 + "yes", r"genre flag 19 must be 0 or 1, found 'yes'"),
    ("u.item", 3, "1|t||||" + "|".join("0" * 19), r"movie id 1 already defined on line 1"),
    ("u.genre", 2, "Action", r"expected 2 '\|'-separated fields, found 1"),
    ("u.genre", 2, "Action|one", r"genre index must be a non-negative integer, found 'one'"),
    ("u.genre", 2, "Action|2", r"genre index must be 1, found '2'"),
    ("u.genre", 2, "|1", r"genre name is empty"),
]


@pytest.mark.parametrize(("name", "line", "text", "message"), _MALFORMED)
def test_malformed_line_names_file_and_line(
    tiny_movielens_dir: Path, name: str, line: int, text: str, message: str
) -> None:
    path = tiny_movielens_dir / name
    _set_line(path, line, text)
    expected = re.escape(f"{path}:{line}: ") + message + r".*line: " + re.escape(repr(text))
    with pytest.raises(MovieLensFormatError, match=expected):
        load_movielens(tiny_movielens_dir)


def test_non_ascii_byte_in_u_data_is_reported(tiny_movielens_dir: Path) -> None:
    path = tiny_movielens_dir / "u.data"
    _set_line(path, 2, "1\t2\t3\t88125095\xe9")
    with pytest.raises(MovieLensFormatError, match=re.escape(f"{path}:2: timestamp must be")):
        load_movielens(tiny_movielens_dir)


def test_genre_count_must_be_19(tiny_movielens_dir: Path) -> None:
    path = tiny_movielens_dir / "u.genre"
    path.write_text("".join(f"{name}|{i}\n" for i, name in enumerate(TINY_GENRES[:18])))
    with pytest.raises(MovieLensFormatError, match=re.escape(f"{path}:18: expected 19 genres")):
        load_movielens(tiny_movielens_dir)


@pytest.mark.parametrize("name", ["u.data", "u.user", "u.item", "u.genre"])
def test_empty_file_is_an_error(tiny_movielens_dir: Path, name: str) -> None:
    path = tiny_movielens_dir / name
    path.write_bytes(b"\n")
    with pytest.raises(MovieLensFormatError, match=re.escape(f"{path}:1: file is empty")):
        load_movielens(tiny_movielens_dir)


@pytest.mark.parametrize("name", ["u.data", "u.user", "u.item"])
def test_missing_file_is_a_clear_error(tiny_movielens_dir: Path, name: str) -> None:
    (tiny_movielens_dir / name).unlink()
    with pytest.raises(MovieLensNotFoundError, match=rf"missing MovieLens file\(s\) {name}"):
        load_movielens(tiny_movielens_dir)
    assert issubclass(MovieLensNotFoundError, FileNotFoundError)


# --------------------------------------------------------------------------- split files


def _write_split(folder: Path, name: str, rows: list[tuple[int, int, int, int]]) -> Path:
    path = folder / name
    path.write_text(rating_lines(rows))
    return path


def test_read_split_file_maps_rows_to_indices(tiny_movielens_dir: Path) -> None:
    _write_split(tiny_movielens_dir, "u1.base", [TINY_RATINGS[i] for i in (5, 0, 3)])
    ratings = load_movielens(tiny_movielens_dir)
    rows = read_split_file(tiny_movielens_dir, "u1.base", ratings)
    assert rows.dtype == np.int64
    assert rows.tolist() == [5, 0, 3]
    assert read_split_file(tiny_movielens_dir, "u1.base").tolist() == [5, 0, 3]  # loads itself


def test_read_split_file_unknown_row(tiny_movielens_dir: Path) -> None:
    path = _write_split(tiny_movielens_dir, "ua.test", [TINY_RATINGS[0], (1, 1, 5, 123)])
    with pytest.raises(MovieLensFormatError, match=re.escape(f"{path}:2: no rating with this")):
        read_split_file(tiny_movielens_dir, "ua.test")


def test_read_split_file_rating_mismatch(tiny_movielens_dir: Path) -> None:
    path = _write_split(tiny_movielens_dir, "u2.test", [(2, 1, 1, 881250951)])
    with pytest.raises(MovieLensFormatError, match=re.escape(f"{path}:1: rating 1 differs from u.data's 4")):
        read_split_file(tiny_movielens_dir, "u2.test")


def test_read_split_file_duplicate_row(tiny_movielens_dir: Path) -> None:
    path = _write_split(tiny_movielens_dir, "u3.base", [TINY_RATINGS[1]] * 2)
    with pytest.raises(MovieLensFormatError, match=re.escape(f"{path}:2: this rating is listed")):
        read_split_file(tiny_movielens_dir, "u3.base")


def test_read_split_file_malformed_line(tiny_movielens_dir: Path) -> None:
    path = tiny_movielens_dir / "u4.base"
    path.write_text("1\t1\t5\t881250949\n1\t2\t3\n")
    with pytest.raises(MovieLensFormatError, match=re.escape(f"{path}:2: expected 4")):
        read_split_file(tiny_movielens_dir, "u4.base")


def test_read_split_file_bad_name(tiny_movielens_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"`name` must be one of u1.base, .*Received: name='u6'"):
        read_split_file(tiny_movielens_dir, "u6")


def test_read_split_file_missing(tiny_movielens_dir: Path) -> None:
    with pytest.raises(MovieLensNotFoundError, match=r"u5.test: MovieLens split file not found"):
        read_split_file(tiny_movielens_dir, "u5.test")


# --------------------------------------------------------------------------- locating


def test_locate_folder_itself(tiny_movielens_dir: Path, tmp_path: Path) -> None:
    assert locate_movielens(tiny_movielens_dir, download=False) == tiny_movielens_dir


def test_locate_parent_folder(tiny_movielens_dir: Path) -> None:
    assert locate_movielens(tiny_movielens_dir.parent, download=False) == tiny_movielens_dir


def test_locate_parent_holding_zip(tiny_movielens_dir: Path, tmp_path: Path) -> None:
    holder = tmp_path / "holder"
    holder.mkdir()
    _zip_folder(tiny_movielens_dir, holder / "ml-100k.zip")
    cache = tmp_path / "cache"
    sums = _sums(tiny_movielens_dir)
    found = locate_movielens(holder, download=False, cache_dir=cache, expected_sha256=sums)
    assert found == cache / "ml-100k"
    assert _sums(found) == sums
    # A second call reuses the verified cache; a path to the zip itself works too.
    assert locate_movielens(holder / "ml-100k.zip", cache_dir=cache, expected_sha256=sums) == found


def test_locate_zip_replaces_a_stale_cache(tiny_movielens_dir: Path, tmp_path: Path) -> None:
    holder = tmp_path / "holder"
    holder.mkdir()
    _zip_folder(tiny_movielens_dir, holder / "ml-100k.zip")
    stale = write_tiny_movielens(tmp_path / "cache" / "ml-100k")
    (stale / "u.data").write_text(rating_lines(TINY_RATINGS[:2]))
    sums = _sums(tiny_movielens_dir)
    found = locate_movielens(holder, cache_dir=tmp_path / "cache", expected_sha256=sums)
    assert _sums(found) == sums
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["ml-100k"]


def test_locate_environment_variable(tiny_movielens_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCNRANK_DATA", str(tiny_movielens_dir.parent))
    assert locate_movielens(download=False) == tiny_movielens_dir


def test_locate_argument_wins_over_environment(
    tiny_movielens_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DCNRANK_DATA", str(tmp_path / "nowhere"))
    assert locate_movielens(tiny_movielens_dir, download=False) == tiny_movielens_dir


def test_locate_cache(tmp_path: Path) -> None:
    cached = write_tiny_movielens(tmp_path / "cache" / "ml-100k")
    assert locate_movielens(download=False, cache_dir=tmp_path / "cache") == cached


def test_locate_cache_respects_xdg_cache_home(tmp_path: Path) -> None:
    cached = write_tiny_movielens(tmp_path / "xdg-cache" / "dcnrank" / "ml-100k")
    assert locate_movielens(download=False) == cached


def test_locate_nothing_without_download_lists_the_three_ways(tmp_path: Path) -> None:
    with pytest.raises(MovieLensNotFoundError) as caught:
        locate_movielens(download=False, cache_dir=tmp_path / "cache")
    message = str(caught.value)
    assert "download=False" in message
    assert "--data-dir" in message
    assert "DCNRANK_DATA" in message
    assert str(tmp_path / "cache" / "ml-100k") in message
    assert "https://files.grouplens.org/datasets/movielens/ml-100k.zip" in message


def test_locate_explicit_folder_without_data_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MovieLensNotFoundError, match=r"data_dir='.*empty' holds neither"):
        locate_movielens(tmp_path / "empty", cache_dir=tmp_path / "cache")


def test_locate_environment_without_data_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCNRANK_DATA", str(tmp_path / "empty"))
    with pytest.raises(MovieLensNotFoundError, match=r"\$DCNRANK_DATA='.*empty' holds neither"):
        locate_movielens(cache_dir=tmp_path / "cache")


def test_locate_failed_download_is_not_found(tmp_path: Path) -> None:
    url = (tmp_path / "absent.zip").as_uri()
    with pytest.raises(MovieLensNotFoundError, match=r"the download failed: could not download") as caught:
        locate_movielens(cache_dir=tmp_path / "cache", url=url)
    assert "--data-dir" in str(caught.value) and url in str(caught.value)
    assert list((tmp_path / "cache").iterdir()) == []


def test_locate_downloads_into_cache(tiny_movielens_dir: Path, tmp_path: Path) -> None:
    url = _zip_folder(tiny_movielens_dir, tmp_path / "ml-100k.zip").as_uri()
    sums = _sums(tiny_movielens_dir)
    found = locate_movielens(cache_dir=tmp_path / "cache", url=url, expected_sha256=sums)
    assert found == tmp_path / "cache" / "ml-100k"
    assert len(load_movielens(found)) == 6


# --------------------------------------------------------------------------- real data


def test_real_checksums(movielens_dir: Path) -> None:
    assert _sums(movielens_dir) == dict(MOVIELENS_100K_SHA256)


def test_real_counts(movielens_ratings: Ratings) -> None:
    assert len(movielens_ratings) == 100_000
    assert len(np.unique(movielens_ratings.user_id)) == 943
    assert len(np.unique(movielens_ratings.movie_id)) == 1682
    assert sorted(np.unique(movielens_ratings.user_rating).tolist()) == [1, 2, 3, 4, 5]
    assert np.unique(movielens_ratings.bucketized_user_age).tolist() == [1, 18, 25, 35, 45, 50, 56]


def test_real_oddities(movielens_ratings: Ratings) -> None:
    by_movie = dict(
        zip(
            movielens_ratings.movie_id.tolist(),
            movielens_ratings.release_year.tolist(),
            strict=True,
        )
    )
    assert by_movie[267] == 0  # "unknown": no release date
    assert by_movie[1373] == 1971  # "4-Feb-1971": the only one-digit day
    zip_codes = np.unique(movielens_ratings.user_zip_code)
    assert sum(not z.isdigit() for z in zip_codes) == 17  # Canadian codes such as "T8H1N"


def test_real_zip_installs_with_the_default_sums(movielens_dir: Path, tmp_path: Path) -> None:
    archive = tmp_path / "holder" / "ml-100k.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for name in ("u.data", "u.user", "u.item"):
            out.write(movielens_dir / name, f"ml-100k/{name}")
    found = locate_movielens(archive.parent, download=False, cache_dir=tmp_path / "cache")
    assert _sums(found) == dict(MOVIELENS_100K_SHA256)
