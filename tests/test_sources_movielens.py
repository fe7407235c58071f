"""`dcnrank.data.sources.movielens`: each release's files read into one table, its spec, splits and errors."""

from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_RATINGS, rating_lines, write_tiny_movielens

from dcnrank.data.sources import DATASETS, detect_release, load_movielens_source, movielens_spec
from dcnrank.data.sources.errors import MovieLensFormatError, MovieLensNotFoundError
from dcnrank.data.spec.feature_spec import load_feature_spec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
COLUMNS_WITH_USERS = [
    "user_id", "movie_id", "rating", "timestamp", "age", "gender", "occupation", "zip_code",
    "title", "genres", "release_year",
]  # fmt: skip
COLUMNS_WITHOUT_USERS = ["user_id", "movie_id", "rating", "timestamp", "title", "genres", "release_year"]


def write(folder: Path, files: dict[str, str], encoding: str = "utf-8") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_bytes(text.encode(encoding))
    return folder


ONE_M = {
    "ratings.dat": "2::20::5::978300760\n1::10::3::978302109\n1::20::4::978301968\n",
    "movies.dat": "10::Café (1998)::Comedy|Drama\n20::No Year Here::Horror\n",
    "users.dat": "1::F::1::10::48067\n2::M::56::16::70072\n",
}
TEN_M = {
    "ratings.dat": "1::5::3.5::838985046\n2::5::0.5::838983525\n",
    "movies.dat": "5::Heat (1995)::Action|Crime|Thriller\n",
    "tags.dat": "1::5::crime::1138537770\n",
}
LATEST = {
    "ratings.csv": "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,4.5,964981247\n3,1,2.5,1306463578\n",
    "movies.csv": 'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n2,"American President, The (1995)",'
    "(no genres listed)\n",
}


def check_split(source, name, seed=0):
    train, test = source.split_rows(name, seed)
    assert train.dtype == test.dtype == np.int64
    if name != "leaky":
        assert not set(train.tolist()) & set(test.tolist())
        assert sorted([*train.tolist(), *test.tolist()]) == list(range(source.table.num_rows))
    return train, test


# --------------------------------------------------------------------------- 100K


def test_100k_table_spec_and_splits(tiny_movielens_dir):
    source = load_movielens_source(tiny_movielens_dir)
    assert source.release == "100k" and source.default_split == "u1"
    assert source.splits == ("u1", "u2", "u3", "u4", "u5", "ua", "ub", "random", "temporal", "leaky")
    table = source.table
    assert table.column_names == COLUMNS_WITH_USERS
    assert str(table.schema.field("genres").type) == "list<item: string>"
    # u.data order; u.user "1|24|M|technician|85711" (24 -> bucket 18), "3|17|M|student|T8H1N" (17 -> 1)
    assert table.column("user_id").to_pylist() == [r[0] for r in TINY_RATINGS]
    assert table.column("movie_id").to_pylist() == [1, 2, 1, 3, 4, 1]
    assert table.column("rating").to_pylist() == [5.0, 3.0, 4.0, 1.0, 2.0, 5.0]
    assert table.column("timestamp").to_pylist()[0] == 881250949
    assert table.column("age").to_pylist() == [18, 18, 50, 50, 1, 1]
    assert table.column("gender").to_pylist() == ["M", "M", "F", "F", "M", "M"]
    assert table.column("zip_code").to_pylist()[4] == "T8H1N"
    assert table.column("genres").to_pylist()[:4] == [["Comedy"], ["Action", "Adventure"], ["Comedy"], ["unknown"]]
    assert table.column("release_year").to_pylist() == [1995, 1995, 1995, None, 1995, 1995]  # movie 3: no date
    assert table.column("title").to_pylist()[4] == "Café Society (1995)"
    assert source.spec == movielens_spec("100k") == load_feature_spec(EXAMPLES / "movielens_table.toml")
    assert (source.spec.user, source.spec.item) == ("user_id", "movie_id")
    assert source.spec.item_columns == ("genres", "release_year")
    for name in ("random", "temporal", "leaky"):
        check_split(source, name)
    train, test = source.split_rows("temporal", train_fraction=0.5)
    assert test.tolist() == [2, 3, 4]  # the 3 latest timestamps (...951, ...952, ...953)
    train, test = source.split_rows("leaky", 3)
    assert len(train) == 5 and len(test) == 1


def test_100k_grouplens_split_files(tiny_movielens_dir):
    (tiny_movielens_dir / "u1.base").write_text(rating_lines([TINY_RATINGS[i] for i in (5, 0, 1, 2)]))
    (tiny_movielens_dir / "u1.test").write_text(rating_lines([TINY_RATINGS[i] for i in (4, 3)]))
    source = load_movielens_source(tiny_movielens_dir)
    train, test = check_split(source, "u1")
    assert train.tolist() == [5, 0, 1, 2] and test.tolist() == [4, 3]  # the files' line order
    with pytest.raises(MovieLensNotFoundError, match=r"u2\.base: MovieLens split file not found"):
        source.split_rows("u2")


def test_100k_by_name_from_data_dir(tmp_path):
    write_tiny_movielens(tmp_path / "ml-100k")
    source = load_movielens_source("movielens-100k", data_dir=tmp_path, download=False)
    assert source.folder == tmp_path / "ml-100k" and source.table.num_rows == 6


def test_100k_real(movielens_dir):
    source = load_movielens_source(movielens_dir)
    table = source.table
    assert table.num_rows == 100_000
    assert len(set(table.column("user_id").to_pylist())) == 943
    assert len(set(table.column("movie_id").to_pylist())) == 1682
    train, test = check_split(source, "u1")
    assert (len(train), len(test)) == (80_000, 20_000)
    for name in ("u5", "ua", "random", "temporal"):
        check_split(source, name)
    assert table.column("release_year").null_count == 9  # the ratings of the one movie without a date


# --------------------------------------------------------------------------- 1M, 10M, latest


def test_1m(tmp_path):
    source = load_movielens_source(write(tmp_path / "ml-1m", ONE_M, encoding="latin-1"))
    assert source.release == "1m" and source.splits == ("random", "temporal")
    table = source.table
    assert table.column_names == COLUMNS_WITH_USERS
    assert table.column("user_id").to_pylist() == [2, 1, 1]
    assert table.column("rating").to_pylist() == [5.0, 3.0, 4.0]
    assert table.column("age").to_pylist() == [56, 1, 1]
    assert table.column("gender").to_pylist() == ["M", "F", "F"]
    assert table.column("occupation").to_pylist() == ["self-employed", "K-12 student", "K-12 student"]
    assert table.column("zip_code").to_pylist() == ["70072", "48067", "48067"]
    assert table.column("title").to_pylist()[1] == "Café (1998)"  # movies.dat is latin-1
    assert table.column("genres").to_pylist() == [["Horror"], ["Comedy", "Drama"], ["Horror"]]
    assert table.column("release_year").to_pylist() == [None, 1998, None]
    assert source.spec == movielens_spec("1m") == movielens_spec("100k")
    train, test = check_split(source, "temporal", 0)
    assert test.tolist() == [1] and train.tolist() == [0, 2]  # 978300760 < 978301968 < 978302109 (2 of 3 train)
    check_split(source, "random", 7)
    with pytest.raises(
        ValueError, match=r"`split` must be one of random, temporal for MovieLens 1M\. Received: split='u1'"
    ):
        source.split_rows("u1")


def test_10m_has_no_user_columns(tmp_path):
    source = load_movielens_source(write(tmp_path / "ml-10M100K", TEN_M))
    assert source.release == "10m"
    assert source.table.column_names == COLUMNS_WITHOUT_USERS
    assert source.table.column("rating").to_pylist() == [3.5, 0.5]
    assert source.table.column("genres").to_pylist()[0] == ["Action", "Crime", "Thriller"]
    assert source.spec.user_columns == () and "age" not in source.spec.input_names
    assert source.spec.user == "user_id" and source.spec.item_columns == ("genres", "release_year")


def test_latest_csv(tmp_path):
    source = load_movielens_source(write(tmp_path / "ml-latest-small", LATEST))
    table = source.table
    assert source.release == "latest" and table.column_names == COLUMNS_WITHOUT_USERS
    assert table.column("movie_id").to_pylist() == [1, 2, 1]
    assert table.column("rating").to_pylist() == [4.0, 4.5, 2.5]
    assert table.column("title").to_pylist()[1] == "American President, The (1995)"
    assert table.column("genres").to_pylist() == [["Adventure", "Animation"], [], ["Adventure", "Animation"]]
    assert table.column("release_year").to_pylist() == [1995, 1995, 1995]
    loaded = load_movielens_source("movielens-latest-small", data_dir=tmp_path)
    assert loaded.folder == tmp_path / "ml-latest-small"


def test_detect_release(tmp_path):
    assert detect_release(write(tmp_path / "a", ONE_M)) == "1m"
    assert detect_release(write(tmp_path / "b", TEN_M)) == "10m"
    assert detect_release(write(tmp_path / "c", LATEST)) == "latest"
    assert detect_release(write_tiny_movielens(tmp_path / "d")) == "100k"


# --------------------------------------------------------------------------- errors


def test_a_folder_without_a_release_names_each_release(tmp_path):
    folder = write(tmp_path / "empty", {"readme.txt": "hi"})
    with pytest.raises(MovieLensNotFoundError) as error:
        load_movielens_source(folder)
    message = str(error.value)
    assert message.startswith(f"{folder}: holds no MovieLens release; a release folder holds the files of one of ")
    for fragment in (
        "MovieLens 100K: u.data, u.user, u.item",
        "MovieLens 1M: ratings.dat, movies.dat, users.dat",
        "MovieLens 10M: ratings.dat, movies.dat",
        "ml-latest: ratings.csv, movies.csv",
    ):
        assert fragment in message
    with pytest.raises(MovieLensNotFoundError, match=r"nope: is not a folder"):
        load_movielens_source(tmp_path / "nope")


def test_unknown_name_lists_the_datasets():
    with pytest.raises(ValueError, match=r"`dataset` must be one of movielens-100k, movielens-1m, .*Received: 'ml-2m'"):
        load_movielens_source("ml-2m")
    assert "movielens-latest-small" in DATASETS


def test_named_release_not_found_or_another_release(tmp_path):
    with pytest.raises(
        MovieLensNotFoundError,
        match=r"MovieLens 1M \(--dataset movielens-1m\) not found: --data-dir .* holds no ml-1m/",
    ):
        load_movielens_source("movielens-1m", data_dir=tmp_path)
    write(tmp_path / "ml-1m", LATEST)  # a latest layout under 1M's folder name
    with pytest.raises(MovieLensNotFoundError, match=r"not found"):
        load_movielens_source("movielens-1m", data_dir=tmp_path)
    folder = write(tmp_path / "x", ONE_M)  # holds 1M, asked for 10M (1M's files include 10M's)
    with pytest.raises(
        MovieLensNotFoundError, match=r"x: holds MovieLens 1M, not MovieLens 10M \(--dataset movielens-10m\)"
    ):
        load_movielens_source("movielens-10m", data_dir=folder)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({**ONE_M, "ratings.dat": "1::10::3::978302109\n1::10::3\n"},
         r"ratings\.dat:2: expected 4 '::'-separated fields, found 3; line: '1::10::3'"),
        ({**ONE_M, "ratings.dat": "1::10::3::978302109\n1::ten::3::1\n"},
         r"ratings\.dat:2: movie id must be an integer, found 'ten'; line: '1::ten::3::1'"),
        ({**ONE_M, "ratings.dat": "1::10::3::9\n\n1::10::4::9\n"},
         r"ratings\.dat:2: expected 4 '::'-separated fields, found 1"),
        ({**ONE_M, "ratings.dat": "1::10::3::9\n1::10::7::9\n"},
         r"ratings\.dat:2: rating must be 0\.5\.\.5, found 7\.0"),
        ({**ONE_M, "ratings.dat": "1::10::3::9\n1::99::4::9\n"}, r"ratings\.dat:2: movie id 99 is not in movies\.dat"),
        ({**ONE_M, "ratings.dat": "1::10::3::9\n9::10::4::9\n"}, r"ratings\.dat:2: user id 9 is not in users\.dat"),
        ({**ONE_M, "ratings.dat": ""}, r"ratings\.dat:1: file is empty"),
        ({**ONE_M, "movies.dat": "10::Café (1998)\n"}, r"movies\.dat:1: expected 3 '::'-separated fields, found 2"),
        ({**ONE_M, "movies.dat": "10::A::Drama\n20::B::Drama\n10::C::Drama\n"},
         r"movies\.dat:3: movie id 10 already defined on line 1"),
        ({**ONE_M, "users.dat": "1::X::1::10::48067\n"}, r"users\.dat:1: gender must be 'M' or 'F', found 'X'"),
        ({**ONE_M, "users.dat": "1::F::2::10::48067\n"}, r"users\.dat:1: age must be one of 1, 18, 25, 35, 45, 50, 56"),
        ({**ONE_M, "users.dat": "1::F::1::21::48067\n"},
         r"users\.dat:1: occupation must be a code 0\.\.20, found '21'"),
        ({**ONE_M, "users.dat": "1::F::1::2::\n"}, r"users\.dat:1: zip code is empty"),
        ({**ONE_M, "users.dat": "1::F::1::2::1\n1::F::1::2::1\n"},
         r"users\.dat:2: user id 1 already defined on line 1"),
    ],
)  # fmt: skip
def test_dat_errors_name_file_and_line(tmp_path, files, message):
    with pytest.raises(MovieLensFormatError, match=message):
        load_movielens_source(write(tmp_path / "ml-1m", files))


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({**LATEST, "ratings.csv": "user,movie,rating,timestamp\n1,1,4,9\n"},
         r"ratings\.csv:1: the header must be 'userId,movieId,rating,timestamp'"),
        ({**LATEST, "ratings.csv": "userId,movieId,rating,timestamp\n1,1,4,9\n1,1,good,9\n"},
         r"ratings\.csv:3: rating must be a number, found 'good'; line: '1,1,good,9'"),
        ({**LATEST, "ratings.csv": "userId,movieId,rating,timestamp\n1,1,4,9\n1,3,4,9\n"},
         r"ratings\.csv:3: movie id 3 is not in movies\.csv"),
        ({**LATEST, "ratings.csv": "userId,movieId,rating,timestamp\n"},
         r"ratings\.csv:2: no ratings after the header"),
        ({**LATEST, "movies.csv": "id,title,genres\n1,A,Drama\n"},
         r"movies\.csv:1: the header must be 'movieId,title,genres'"),
        ({**LATEST, "movies.csv": "movieId,title,genres\n1,A,Drama\n2,B\n"},
         r"movies\.csv:3: expected 3 comma-separated fields, found 2"),
        ({**LATEST, "movies.csv": 'movieId,title,genres\n1,"A\n'}, r"movies\.csv:2: malformed CSV"),
    ],
)  # fmt: skip
def test_csv_errors_name_file_and_line(tmp_path, files, message):
    with pytest.raises(MovieLensFormatError, match=message):
        load_movielens_source(write(tmp_path / "ml-latest", files))


def test_split_and_spec_arguments(tmp_path):
    source = load_movielens_source(write(tmp_path / "ml-latest", LATEST))
    with pytest.raises(ValueError, match=r"`train_fraction` must be in \(0, 1\)\. Received: train_fraction=1\.0"):
        source.split_rows("temporal", train_fraction=1.0)
    with pytest.raises(ValueError, match=r"a 'temporal' split of 3 rows with train_fraction=0\.1 leaves train"):
        source.split_rows("temporal", train_fraction=0.1)
    with pytest.raises(ValueError, match=r"`release` must be one of 100k, 1m, 10m, latest\. Received: release='2m'"):
        movielens_spec("2m")
