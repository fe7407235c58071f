"""`dcnrank evaluate`: RMSE, MAE and ranking metrics of a bundle on a split's test rows."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dcnrank.bundle import Bundle, load
from dcnrank.cli.common import positive_int
from dcnrank.data import SPLIT_NAMES, load_movielens, locate_movielens
from dcnrank.workflows import evaluate_split, split_settings

EXAMPLES = """examples:
  dcnrank evaluate --model runs/dcn                 # the split (and seed) it was trained with
  dcnrank evaluate --model runs/dcn --split u1 --json
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "evaluate",
        help="score a bundle on the test rows of a MovieLens split",
        description="Print RMSE, MAE and per-user ranking metrics (NDCG@k with gain 2^rating-1; "
        "MAP@k, MRR, precision@k, recall@k with rating >= 4 relevant) of a bundle on the test "
        "rows of a split; by default the split and seed recorded in the bundle.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, metavar="DIR", help="the bundle folder")
    parser.add_argument("--split", choices=SPLIT_NAMES, default=None, help="default: the bundle's split")
    parser.add_argument("--seed", type=int, default=None, help="split seed (default: the bundle's)")
    parser.add_argument("--k", type=positive_int, default=10, help="ranking cutoff (default: 10)")
    parser.add_argument("--data-dir", default=None, help="folder with ml-100k/ (default: the bundle's, "
                        "else $DCNRANK_DATA or the cache)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=run)


def movielens_folder(bundle: Bundle, data_dir: str | None) -> Path:
    """`--data-dir`, else the folder the bundle was trained on if it still exists, else a search."""
    if data_dir is None:
        recorded = bundle.config.train.get("data", {}).get("data_dir")
        data_dir = recorded if isinstance(recorded, str) and Path(recorded).exists() else None
    return locate_movielens(data_dir)


def run(args: argparse.Namespace) -> int:
    bundle = load(args.model)
    split, seed = split_settings(bundle.config.train, args.split, args.seed)
    folder = movielens_folder(bundle, args.data_dir)
    metrics = evaluate_split(bundle, load_movielens(folder), split, seed, folder, k=args.k)
    if args.json:
        print(json.dumps(metrics, indent=2))
        return 0
    print(f"{args.model}: split {split} (seed {seed}), {metrics['rows']:,} test rows, {metrics['users']} users")
    for name, value in metrics.items():
        if name not in ("split", "seed", "rows", "users"):
            print(f"  {name:<13} {value:.4f}")
    return 0
