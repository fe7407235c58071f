"""`dcnrank movielens`: the seed's DCN-vs-DNN experiment on MovieLens 100K."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from dcnrank.cli.common import add_run_flags, positive_int, results_table
from dcnrank.data import SPLIT_NAMES
from dcnrank.experiments.movielens import VOCAB_POLICIES, run_movielens
from dcnrank.experiments.report import MODEL_LABELS, params_note, write_report
from dcnrank.experiments.result import ExperimentResult
from dcnrank.explain import interaction_matrix, plot_heatmap
from dcnrank.models.dcn import first_cross_layer

EXAMPLES = """examples:
  dcnrank movielens                           # 10 trials, disjoint random split
  dcnrank movielens --split leaky             # emulate the seed's leaky split
  dcnrank movielens --split u1 --trials 3 --data-dir ~/data/ml-100k
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "movielens",
        help="the seed's MovieLens 100K experiment (stacked DCN, low-rank DCN, deep network)",
        description="Train the seed's three models --trials times each on MovieLens 100K; print "
        "RMSE mean ± std and #params; write movielens.json, interaction heatmaps and report.md.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_movielens_flags(parser)
    add_run_flags(parser, out="runs/movielens")
    parser.set_defaults(func=run)


def add_movielens_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trials", type=positive_int, default=10, help="trials per model (default: 10)")
    parser.add_argument("--epochs", type=positive_int, default=10, help="epochs (default: 10)")
    parser.add_argument("--split", choices=SPLIT_NAMES, default="random", help="train/test split (default: random)")
    parser.add_argument(
        "--vocab", choices=VOCAB_POLICIES, default="train", help="fit vocabularies on train rows or all rows"
    )
    parser.add_argument("--data-dir", default=None, help="folder with ml-100k/ (or ml-100k itself, or the zip)")


def write_movielens_outputs(result: ExperimentResult, out: Path) -> list[Path]:
    """JSON and heatmaps of one run, under the split's name and as the latest run."""
    split = result.info["split"]
    names = result.info["feature_names"]
    written = []
    for name, suffix in (("cross", ""), ("cross_low_rank", "_low_rank")):
        if name not in result.trained:
            continue
        matrix = interaction_matrix(first_cross_layer(result.trained[name]), len(names))
        result.models[name].extra["interactions"] = matrix.tolist()
        png = plot_heatmap(
            matrix,
            names,
            out / f"movielens_{split}_interactions{suffix}.png",
            title=f"{MODEL_LABELS[name]}: block norms, split {split}",
        )
        latest = out / f"movielens_interactions{suffix}.png"
        shutil.copyfile(png, latest)
        written += [png, latest]
    written.append(result.write_json(out / f"movielens_{split}.json"))
    written.append(result.write_json(out / "movielens.json"))
    return written


def run(args: argparse.Namespace) -> int:
    result = run_movielens(
        data_dir=args.data_dir,
        trials=args.trials,
        epochs=args.epochs,
        split=args.split,
        vocab=args.vocab,
        seed=args.seed,
        precision=args.precision,
        vectorize=not args.sequential,
        device=args.device,
        progress=False if args.quiet else None,
    )
    out = Path(args.out)
    write_movielens_outputs(result, out)
    report = write_report(out)
    print(results_table(result, MODEL_LABELS))
    print(
        f"\nmovielens: split {args.split} (train∩test overlap {result.info['train_test_overlap']:.1%}), "
        f"{result.seconds:.1f} s; wrote {out / 'movielens.json'} and {report}"
    )
    note = params_note(result.to_dict())
    if note:
        print(note.strip())
    return 0
