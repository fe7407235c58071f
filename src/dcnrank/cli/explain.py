"""`dcnrank explain`: which feature pairs a trained model's cross layer weighs most, as a
labelled heatmap and a top-pairs list."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dcnrank.bundle import load
from dcnrank.cli.common import positive_int
from dcnrank.explain.heatmap import check_png_path
from dcnrank.explain.model_interactions import INTERACTIONS_FILE, model_interactions

EXAMPLES = """examples:
  dcnrank explain --model runs/ctr                          # heatmap to runs/ctr/interactions.png
  dcnrank explain --model runs/ctr --layer 1 --out layer1.png --top 10
  dcnrank explain --model runs/ml --json                    # as JSON

Entry (i, j) of the matrix is the Frobenius norm of the block of the layer's kernel that
carries feature i of its input x into the output multiplied by feature j of x0 (see
dcnrank.explain.interaction_matrix); a pair's weight is (i, j) + (j, i). Blocks are the
model's input columns, each as wide as its embedding. A mixture-of-experts layer's
experts are weighed equally.
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "explain",
        help="heatmap and top feature pairs of a trained model's cross layer",
        description="Load a bundle, compute the feature × feature interaction "
        "matrix of one cross layer (matrix, vector or mixture crosses), write it as a labelled "
        "heatmap PNG and print the strongest pairs of distinct features.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, metavar="DIR", help="the bundle folder")
    parser.add_argument(
        "--out", default=None, metavar="FILE.png",
        help="where to write the heatmap PNG, exactly this path (default: DIR/interactions.png, or "
        "DIR/interactions_layerN.png)",
    )  # fmt: skip
    parser.add_argument("--layer", type=int, default=0, help="the cross layer, 0 the first (default: 0)")
    parser.add_argument("--top", type=positive_int, default=5, help="how many pairs to print (default: 5)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary (with the matrix) instead of text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = check_png_path(args.out, "--out") if args.out is not None else None  # before loading anything
    bundle = load(args.model)
    found = model_interactions(bundle.model, layer=args.layer)
    default_name = INTERACTIONS_FILE if args.layer == 0 else f"interactions_layer{args.layer}.png"
    png = found.plot(out or Path(args.model) / default_name)
    pairs = found.top_pairs(args.top)
    if args.json:
        summary = {
            "model": str(args.model),
            "layer": found.layer,
            "layer_type": found.layer_type,
            "labels": list(found.labels),
            "block_sizes": list(found.block_sizes),
            "matrix": found.matrix.tolist(),
            "top_pairs": [{"features": [a, b], "weight": weight} for a, b, weight in pairs],
            "heatmap": str(png),
        }
        print(json.dumps(summary, indent=2))
        return 0
    print(
        f"cross layer {found.layer} ({found.layer_type}) of {args.model}: {len(found.labels)} features, "
        f"x0 {sum(found.block_sizes)} wide"
    )
    print(f"top {len(pairs)} feature pairs (weight = M[i,j] + M[j,i]):")
    width = max(len(f"{a} × {b}") for a, b, _ in pairs)
    for rank, (a, b, weight) in enumerate(pairs, 1):
        print(f"  {rank}. {f'{a} × {b}':<{width}}  {weight:.3f}")
    print(f"wrote heatmap {png}")
    return 0
