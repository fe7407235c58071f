"""`dcnrank evaluate`: a bundle's metrics on labelled rows (a table, a dataset split's test rows)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from dcnrank.bundle import Bundle, load
from dcnrank.cli.common import add_dataset_flags, dataset_split, positive_int, refuse_dataset_with_data
from dcnrank.data.sources import DATASETS
from dcnrank.workflows.evaluate import evaluate_table

EXAMPLES = """examples:
  dcnrank evaluate --model runs/dcn                 # a dataset run's bundle: its dataset, split and seed
  dcnrank evaluate --model runs/dcn --split u2      # the same dataset, another split's test rows
  dcnrank evaluate --model runs/ml --dataset movielens-100k --split u1 --json
  dcnrank evaluate --model runs/ml --data ml100k_u1_test.csv
  dcnrank evaluate --model runs/ctr --data test.parquet --k 5              # AUC, logloss (+ per-user ranking)

A bundle gets its task's metrics (regression: RMSE, MAE; binary: AUC, logloss, and GAUC with the
spec's group) and, when its spec names a user column, per-user ranking metrics: each user's rows
ranked by prediction, NDCG@k with gain 2^label-1, and MAP@k, MRR, precision@k and recall@k with rows
whose label is >= --relevant relevant (default: 4 for regression, 1 for binary).
Without --data or --dataset, a bundle that `dcnrank train` trained on a dataset is scored on that
dataset's split (recorded in its metrics), its folder found as at training time (--data-dir,
else the recorded data.data_dir, else $DCNRANK_DATA or the cache).
"""

# what the text output states in its first line rather than as a metric
_CONTEXT = ("data", "dataset", "split", "seed", "rows", "users")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "evaluate",
        help="score a bundle on labelled rows: a table, or a split's test rows",
        description="Print a bundle's metrics on labelled rows: --data FILE, or the test rows of "
        "--dataset's --split; a bundle trained on a dataset defaults to the dataset, split and seed it "
        "records. Regression: RMSE, MAE; binary: AUC, logloss (and GAUC); with a user column (or a ranking "
        "task's group column), per-user (per-group) ranking metrics (NDCG@k with gain 2^label-1; MAP@k, MRR, "
        "precision@k, recall@k with label >= "
        "--relevant relevant).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, metavar="DIR", help="the bundle folder")
    parser.add_argument("--data", default=None, metavar="FILE", help="a labelled table (CSV, TSV, Parquet)")
    add_dataset_flags(
        parser,
        "where the dataset is: the release's folder or one holding it "
        "(default: the bundle's data.data_dir if it still exists, else $DCNRANK_DATA or the cache)",
        "default: the one the bundle was trained on",
        "default: the bundle's",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="the split's seed (default: the bundle's data.seed)"
    )  # fmt: skip
    parser.add_argument("--k", type=positive_int, default=10, help="ranking cutoff (default: 10)")
    parser.add_argument(
        "--relevant", type=float, default=None, metavar="LABEL",
        help="labels from this one up are relevant (default: 4 for regression, 1 for binary and ranking)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    refuse_dataset_with_data(args)
    bundle = load(args.model)
    if args.data is not None:
        if args.split is not None or args.data_dir is not None:
            raise ValueError("--split and --data-dir go with a dataset; --data FILE is scored whole")
        metrics = evaluate_table(bundle, args.data, k=args.k, relevant=args.relevant)
        return print_metrics({"data": args.data, **metrics}, args.json, f"{args.model}: {args.data}")
    recorded = recorded_dataset(bundle)
    dataset = args.dataset if args.dataset is not None else recorded.get("dataset")
    if dataset is None:
        raise ValueError(
            f"{args.model} records no dataset (it was trained on your own table): evaluate it on labelled "
            "rows (--data FILE) or on a dataset's test rows (--dataset NAME --split S)"
        )
    same = dataset == recorded.get("dataset")  # the recorded split and folder belong to that dataset
    split = args.split if args.split is not None else recorded.get("split") if same else None
    data_dir = args.data_dir if args.data_dir is not None else _recorded_folder(bundle) if same else None
    seed = args.seed if args.seed is not None else _recorded_seed(bundle)
    source, split, _, test_rows = dataset_split(dataset, split, seed, data_dir)
    metrics = evaluate_table(
        bundle, source.table.take(test_rows), k=args.k, relevant=args.relevant, source=f"{split} test rows"
    )
    context = {"dataset": dataset, "split": split, "seed": seed}
    return print_metrics({**context, **metrics}, args.json, f"{args.model}: {dataset} split {split} (seed {seed})")


def recorded_dataset(bundle: Bundle) -> dict[str, str]:
    """The `dataset` and `split` a dataset run recorded in the bundle's `metrics["data"]`; empty
    for a bundle trained on one's own table (or holding anything else there)."""
    data = bundle.metrics.get("data", {})
    if not isinstance(data, dict) or data.get("dataset") not in DATASETS:
        return {}
    split = data.get("split")
    return {"dataset": data["dataset"], **({"split": split} if isinstance(split, str) else {})}


def _recorded_folder(bundle: Bundle) -> str | None:
    """The `data.data_dir` the bundle was trained with, if that folder still exists."""
    folder = bundle.train.get("data", {}).get("data_dir")
    return folder if isinstance(folder, str) and Path(folder).exists() else None


def _recorded_seed(bundle: Bundle) -> int:
    """The `data.seed` the bundle was trained with (the seed of a `random` split), else 0."""
    seed = bundle.train.get("data", {}).get("seed", 0)
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else 0


def print_metrics(metrics: dict[str, Any], as_json: bool, where: str) -> int:
    """JSON, or `WHERE, N rows, U users` and one line per metric."""
    if as_json:
        print(json.dumps(metrics, indent=2))
        return 0
    users = f", {metrics['users']} users" if "users" in metrics else ""
    users += f", {metrics['groups']} groups" if "groups" in metrics and "auc" not in metrics else ""
    print(
        f"{where}, {metrics['rows']:,} test rows{users}"
        if "split" in metrics
        else f"{where}, {metrics['rows']:,} rows{users}"
    )
    for name, value in metrics.items():
        if name in _CONTEXT or (name == "groups" and "auc" not in metrics):  # in the heading
            continue
        shown = "n/a" if value is None else f"{value:,}" if isinstance(value, int) else f"{value:.4f}"
        print(f"  {name:<13} {shown}")
    return 0
