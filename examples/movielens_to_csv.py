"""Write MovieLens 100K's GroupLens folds u1…u5 as flat CSV tables: each rating with its user and movie.

For N in 1..5 the folder gets ``ml100k_uN_base.csv`` (the fold's training rows) and
``ml100k_uN_test.csv`` (its test rows), one row per rating with the columns of
`dcnrank.data.sources.movielens` (genres as `|`-joined text, an unknown release year as
an empty cell); examples/movielens_table.toml is their spec. The data is read from the
folder you give, $DCNRANK_DATA or the cache (GroupLens' files are not redistributed here):

    python examples/movielens_to_csv.py --data-dir ~/data/ml-100k --out runs/ml100k
    dcnrank train --data runs/ml100k/ml100k_u1_base.csv --spec examples/movielens_table.toml --out runs/ml_u1
    dcnrank evaluate --model runs/ml_u1 --data runs/ml100k/ml100k_u1_test.csv

Files already there are refused (naming them) unless --replace is given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

# The script runs from a source checkout without installing dcnrank.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from dcnrank.data.sources import load_movielens_source  # noqa: E402
from dcnrank.data.streaming.table_writer import write_table  # noqa: E402

FOLDS = ("u1", "u2", "u3", "u4", "u5")


def flat(table: pa.Table) -> pa.Table:
    """`table` with its list column `genres` as `|`-joined text, which a CSV cell can hold."""
    genres = pc.binary_join(table.column("genres"), "|")
    return table.set_column(table.column_names.index("genres"), "genres", genres)


def fold_files(out: Path) -> list[Path]:
    """The files written, in order: ``ml100k_u1_base.csv``, ``ml100k_u1_test.csv``, …, ``ml100k_u5_test.csv``."""
    return [out / f"ml100k_{fold}_{part}.csv" for fold in FOLDS for part in ("base", "test")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir", default=None, help="ml-100k itself, a folder holding ml-100k/, or ml-100k.zip (default: "
        "$DCNRANK_DATA or the cache)",
    )  # fmt: skip
    parser.add_argument("--out", required=True, help="the folder to write the ten CSV files into")
    parser.add_argument("--replace", action="store_true", help="replace files of those names already there")
    args = parser.parse_args(argv)
    out = Path(args.out)
    existing = [path for path in fold_files(out) if path.exists()]
    if existing and not args.replace:
        print(f"error: {', '.join(map(str, existing))} already exist(s); pass --replace or choose another --out",
              file=sys.stderr)  # fmt: skip
        return 2
    source = load_movielens_source("movielens-100k", data_dir=args.data_dir, download=False)
    table = flat(source.table)
    paths = iter(fold_files(out))
    for fold in FOLDS:
        for rows in source.split_rows(fold):
            path = write_table(table.take(pa.array(rows)), next(paths))
            print(f"wrote {len(rows):,} ratings × {table.num_columns} columns to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
