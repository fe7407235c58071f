"""`dcnrank demo`: the toy and MovieLens experiments (both splits) and the report."""

from __future__ import annotations

import argparse
from pathlib import Path

from dcnrank.cli.common import positive_int, results_table
from dcnrank.cli.movielens import write_movielens_outputs
from dcnrank.cli.toy import LABELS as TOY_LABELS
from dcnrank.cli.toy import write_toy_outputs
from dcnrank.data.sources.movielens import load_movielens_source
from dcnrank.experiments.movielens import run_movielens
from dcnrank.experiments.protocols import compare_protocols
from dcnrank.experiments.report import MODEL_LABELS, params_note, write_report
from dcnrank.experiments.toy import run_toy

EXAMPLES = """examples:
  dcnrank demo --out runs/demo
  dcnrank demo --trials 3 --no-leaky --data-dir ~/data
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "demo",
        help="run the toy and MovieLens experiments and write a report",
        description="The main job: the seed's toy experiment, then MovieLens on the disjoint random "
        "split and on the seed's leaky split, then the recipe beside the seed's protocol and a user + item "
        "bias baseline on the disjoint split, with per-epoch validation curves; report.md with tables and plots.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--trials", type=positive_int, default=10, help="MovieLens trials per model (default: 10)")
    parser.add_argument("--no-leaky", action="store_true", help="skip the leaky-split comparison")
    parser.add_argument("--data-dir", default=None, help="folder with ml-100k/")
    parser.add_argument("--seed", type=int, default=0, help="seeds data and trials (default: 0)")
    parser.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    progress = False if args.quiet else None
    toy = run_toy(seed=args.seed, progress=progress)
    write_toy_outputs(toy, out)
    write_report(out)
    print("== toy ==")
    print(results_table(toy, TOY_LABELS))
    print(f"({toy.seconds:.1f} s)\n")
    for split in ("random",) if args.no_leaky else ("random", "leaky"):
        result = run_movielens(
            data_dir=args.data_dir, trials=args.trials, split=split, seed=args.seed, progress=progress
        )
        write_movielens_outputs(result, out)
        write_report(out)
        print(f"== movielens, split {split} (train∩test overlap {result.info['train_test_overlap']:.1%}) ==")
        print(results_table(result, MODEL_LABELS))
        print(f"({result.seconds:.1f} s){params_note(result.to_dict())}\n")
    source = load_movielens_source("movielens-100k", data_dir=args.data_dir)
    comparison = compare_protocols(source, out, split="random", seed=args.seed, progress=progress)
    write_report(out)
    print("== the recipe, the seed's protocol and a bias baseline, split random ==")
    for name, value in comparison.test_rmse.items():
        print(f"  {name:<55} test RMSE {value:.4f}")
    print(f"report: {write_report(out)}")
    return 0
