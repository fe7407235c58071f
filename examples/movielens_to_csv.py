"""Write MovieLens 100K as one flat table: each rating joined with its user and movie.

The output is a CSV (or TSV / Parquet, by --out's suffix) that `dcnrank train --data`
reads with examples/movielens_table.toml: ids, gender, occupation and zip code as
categories, age bucket and release year as numbers, genres as `|`-joined text. The data
is read from the folder you give (GroupLens' files are not redistributed here):

    python examples/movielens_to_csv.py --data-dir ~/data/ml-100k --out runs/movielens.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyarrow as pa

# The script runs from a source checkout without installing dcnrank.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from dcnrank.data.movielens import load_movielens, locate_movielens  # noqa: E402
from dcnrank.data.ratings import Ratings  # noqa: E402
from dcnrank.data.table_writer import write_table  # noqa: E402


def ratings_table(ratings: Ratings) -> pa.Table:
    """One row per rating, in u.data's order; an unknown release year (0) is an empty cell."""
    genres = [
        "|".join(name for name, flag in zip(ratings.genre_names, row, strict=True) if flag) for row in ratings.genres
    ]
    return pa.table(
        {
            "rating": pa.array(ratings.user_rating.astype(float)),
            "user_id": pa.array(ratings.user_id),
            "movie_id": pa.array(ratings.movie_id),
            "gender": pa.array(["M" if g else "F" for g in ratings.user_gender]),
            "age": pa.array(ratings.bucketized_user_age),
            "occupation": pa.array(ratings.user_occupation_text),
            "zip_code": pa.array(ratings.user_zip_code),
            "release_year": pa.array(ratings.release_year, mask=ratings.release_year == 0),
            "genres": pa.array(genres),
        }
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="ml-100k itself, a folder holding ml-100k/, or ml-100k.zip")
    parser.add_argument("--out", required=True, help="output file: .csv, .tsv or .parquet (optionally .gz)")
    args = parser.parse_args(argv)
    folder = locate_movielens(args.data_dir, download=False)
    table = ratings_table(load_movielens(folder))
    path = write_table(table, args.out)
    print(f"wrote {table.num_rows:,} ratings × {table.num_columns} columns from {folder} to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
