"""`dcnrank evaluate`: a bundle's metrics on labelled rows (a table, a MovieLens split's test rows)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from dcnrank.bundle import Bundle, TableBundle, load_any, load_table
from dcnrank.cli.common import add_dataset_flags, dataset_split, positive_int, refuse_dataset_with_data
from dcnrank.data import load_movielens, locate_movielens
from dcnrank.workflows import evaluate_split, split_settings
from dcnrank.workflows.evaluation import evaluate_table

EXAMPLES = """examples:
  table bundles (`dcnrank train --data` or `--dataset`):
  dcnrank evaluate --model runs/ml --dataset movielens-100k --split u1     # the test rows of u1
  dcnrank evaluate --model runs/ml --data ml100k_u1_test.csv --json
  dcnrank evaluate --model runs/ctr --data test.parquet --k 5              # AUC, logloss (+ per-user ranking)

  MovieLens bundles (`dcnrank train` without --data/--dataset):
  dcnrank evaluate --model runs/dcn                 # the split (and seed) it was trained with
  dcnrank evaluate --model runs/dcn --split u1 --json

A table bundle gets its task's metrics (regression: RMSE, MAE; binary: AUC, logloss, and GAUC
with the spec's group) and, when its spec names a user column, per-user ranking metrics: each
user's rows ranked by prediction, NDCG@k with gain 2^label-1, and MAP@k, MRR, precision@k and
recall@k with rows whose label is >= --relevant relevant (default: 4 for regression, 1 for binary).
"""

# what the text output states in its first line rather than as a metric
_CONTEXT = ("data", "dataset", "split", "seed", "rows", "users")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "evaluate",
        help="score a bundle on labelled rows: a table, or a split's test rows",
        description="Print a bundle's metrics on labelled rows. A table bundle is scored on --data FILE "
        "or on the test rows of --dataset's --split; a MovieLens bundle on the test rows of a MovieLens "
        "split, by default the split and seed recorded in the bundle: RMSE, MAE and per-user ranking metrics "
        "(NDCG@k with gain 2^rating-1; MAP@k, MRR, precision@k, recall@k with rating >= 4 relevant).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, metavar="DIR", help="the bundle folder")
    parser.add_argument("--data", default=None, metavar="FILE", help="a labelled table (CSV, TSV, Parquet)")
    add_dataset_flags(
        parser,
        "where the data is: with --dataset, the release's folder or one holding it; for a MovieLens bundle, "
        "the folder with ml-100k/ (default: the bundle's, else $DCNRANK_DATA or the cache)",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="the split's seed (default: the bundle's data.seed)"
    )  # fmt: skip
    parser.add_argument("--k", type=positive_int, default=10, help="ranking cutoff (default: 10)")
    parser.add_argument(
        "--relevant", type=float, default=None, metavar="LABEL",
        help="table bundles: labels from this one up are relevant (default: 4 for regression, 1 for binary)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=run)


def movielens_folder(bundle: Bundle, data_dir: str | None) -> Path:
    """`--data-dir`, else the folder the bundle was trained on if it still exists, else a search."""
    if data_dir is None:
        recorded = bundle.config.train.get("data", {}).get("data_dir")
        data_dir = recorded if isinstance(recorded, str) and Path(recorded).exists() else None
    return locate_movielens(data_dir)


def run(args: argparse.Namespace) -> int:
    refuse_dataset_with_data(args)
    if args.data is not None or args.dataset is not None:
        return run_table(args)
    if args.relevant is not None:
        raise ValueError(
            "--relevant goes with table bundles (--data or --dataset); a MovieLens bundle uses rating >= 4"
        )
    bundle = load_any(args.model)
    if isinstance(bundle, TableBundle):
        raise ValueError(
            f"{args.model} is a table bundle: evaluate it on a labelled table (--data FILE) or on a MovieLens "
            "release's test rows (--dataset NAME --split S)"
        )
    split, seed = split_settings(bundle.config.train, args.split, args.seed)
    folder = movielens_folder(bundle, args.data_dir)
    metrics = evaluate_split(bundle, load_movielens(folder), split, seed, folder, k=args.k)
    return print_metrics(metrics, args.json, f"{args.model}: split {split} (seed {seed})")


def run_table(args: argparse.Namespace) -> int:
    """A table bundle on `--data FILE`, or on the test rows of `--dataset NAME --split S`."""
    if args.data is not None:
        if args.split is not None or args.data_dir is not None:
            raise ValueError("--split and --data-dir go with --dataset; --data FILE is scored whole")
        bundle = load_table(args.model)
        metrics = evaluate_table(bundle, args.data, k=args.k, relevant=args.relevant)
        return print_metrics({"data": args.data, **metrics}, args.json, f"{args.model}: {args.data}")
    bundle = load_table(args.model)
    seed = args.seed if args.seed is not None else _recorded_seed(bundle)
    source, split, _, test_rows = dataset_split(args.dataset, args.split, seed, args.data_dir)
    metrics = evaluate_table(
        bundle, source.table.take(test_rows), k=args.k, relevant=args.relevant, source=f"{split} test rows"
    )
    context = {"dataset": args.dataset, "split": split, "seed": seed}
    return print_metrics({**context, **metrics}, args.json, f"{args.model}: {args.dataset} split {split} (seed {seed})")


def _recorded_seed(bundle: TableBundle) -> int:
    """The `data.seed` the bundle was trained with (the seed of a `random` split), else 0."""
    seed = bundle.train.get("data", {}).get("seed", 0)
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else 0


def print_metrics(metrics: dict[str, Any], as_json: bool, where: str) -> int:
    """JSON, or `WHERE, N rows, U users` and one line per metric."""
    if as_json:
        print(json.dumps(metrics, indent=2))
        return 0
    users = f", {metrics['users']} users" if "users" in metrics else ""
    print(
        f"{where}, {metrics['rows']:,} test rows{users}"
        if "split" in metrics
        else f"{where}, {metrics['rows']:,} rows{users}"
    )
    for name, value in metrics.items():
        if name in _CONTEXT:
            continue
        shown = "n/a" if value is None else f"{value:,}" if isinstance(value, int) else f"{value:.4f}"
        print(f"  {name:<13} {shown}")
    return 0
