"""`dcnrank export`: write a bundle's model as an ONNX file with a fixed input signature."""

from __future__ import annotations

import argparse
import sys

from dcnrank.bundle import load
from dcnrank.export import EXPORT_FORMATS, ONNX_OUTPUT, ONNX_TOLERANCE, export_bundle
from dcnrank.export.onnx_export import onnx_inputs

EXAMPLES = """examples:
  dcnrank export --model runs/ctr --format onnx                  # writes runs/ctr.onnx
  dcnrank export --model runs/ctr --format onnx --out model.onnx

The ONNX file takes the encoded tensors: `categorical` int32 (batch, Fc),
`numeric` float32 and `missing` bool (batch, Fn), `multi_hot_<j>` int32 (batch, L_j) (item
rows, -1 padding; int64 for both when a table has more than 2**31 - 1 rows), each when
the spec has such columns, and returns `score`: float32 (batch,), a probability for a
binary task. See docs/serving.md. Needs the onnx extra: pip install 'dcnrank[onnx]'.
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "export",
        help="export a bundle's model as ONNX",
        description="Export a bundle's model (torch.onnx, torch.export-based) with a dynamic batch "
        "axis, check it with onnxruntime against the eager model on a few batch sizes "
        f"(within {ONNX_TOLERANCE:g}), and write it atomically.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, metavar="DIR", help="the bundle folder")
    parser.add_argument("--format", required=True, help=f"the format: {', '.join(EXPORT_FORMATS)}")
    parser.add_argument(
        "--out", default=None, metavar="FILE", help="the file to write (default: DIR.onnx beside the bundle)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.format not in EXPORT_FORMATS:  # before loading anything
        raise ValueError(f"--format must be one of {', '.join(EXPORT_FORMATS)}. Received: {args.format!r}")
    bundle = load(args.model)
    try:
        path = export_bundle(bundle, args.format, args.out)
    except ImportError as error:
        print(f"dcnrank export: error: {error}", file=sys.stderr)
        return 2
    print(
        f"exported {path}: inputs {', '.join(onnx_inputs(bundle))}, output {ONNX_OUTPUT} float32 (batch,); "
        f"onnxruntime matches the eager model within {ONNX_TOLERANCE:g}"
    )
    return 0
