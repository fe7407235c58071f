"""`dcnrank toy`: the seed's toy experiment, its table, JSON and cross-weight heatmap."""

from __future__ import annotations

import argparse
from pathlib import Path

from dcnrank.cli.common import add_run_flags, positive_int, results_table
from dcnrank.experiments.result import ExperimentResult
from dcnrank.experiments.toy import TOY_FEATURES, run_toy
from dcnrank.explain import interaction_matrix, plot_heatmap
from dcnrank.models.dcn import first_cross_layer

EXAMPLES = """examples:
  dcnrank toy                         # the seed's run: 100 epochs, 1 trial
  dcnrank toy --epochs 20 --trials 3 --out runs/toy
"""

LABELS = {"cross": "Cross Network", "deep": "Deep Network"}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "toy",
        help="the seed's toy experiment (cross vs deep network on mixer data)",
        description="Train the seed's 16-parameter cross network and its deep network on the "
        "blender (mixer) data; print RMSE and #params; write toy.json and a heatmap.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--epochs", type=positive_int, default=100, help="epochs (default: 100)")
    parser.add_argument("--trials", type=positive_int, default=1, help="trials per model (default: 1)")
    add_run_flags(parser, out="runs/toy")
    parser.set_defaults(func=run)


def write_toy_outputs(result: ExperimentResult, out: Path) -> list[Path]:
    """Write `toy.json` and `toy_cross_weights.png` into `out`; return their paths."""
    layer = first_cross_layer(result.trained["cross"])
    matrix = interaction_matrix(layer, num_features=len(TOY_FEATURES))
    result.info["cross_weights"] = matrix.tolist()
    png = plot_heatmap(
        matrix,
        TOY_FEATURES,
        out / "toy_cross_weights.png",
        title="|W| of the cross layer (toy)",
    )
    return [result.write_json(out / "toy.json"), png]


def run(args: argparse.Namespace) -> int:
    result = run_toy(epochs=args.epochs, trials=args.trials, seed=args.seed, precision=args.precision,
        vectorize=not args.sequential,
        device=args.device,
        progress=None if not args.quiet else False,
    )
    out = Path(args.out)
    paths = write_toy_outputs(result, out)
    print(results_table(result, LABELS))
    print(f"\ntoy: {result.seconds:.1f} s; wrote " + ", ".join(str(p) for p in paths))
    return 0
