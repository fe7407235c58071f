"""`dcnrank predict`: score a CSV or Parquet table with a table bundle and write the predictions."""

from __future__ import annotations

import argparse
import json

from dcnrank.bundle import load_table
from dcnrank.cli.common import positive_int
from dcnrank.cli.train import format_metrics
from dcnrank.workflows.table_predictions import PREDICTION_COLUMN, predict_file

EXAMPLES = f"""examples:
  dcnrank predict --model runs/ctr --data new_clicks.parquet --out preds.parquet
  dcnrank predict --model runs/ctr --data test.csv --out preds.csv --keep request_id --json

The output holds the --keep columns, then `{PREDICTION_COLUMN}` (a click probability for a
binary task, the predicted value for regression), one row per input row in input order.
When the table has the label column, the predictions are also measured (AUC, logloss and
group AUC for binary; RMSE and MAE for regression).
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "predict",
        help="score a CSV or Parquet table with a model trained by `train --data`",
        description="Encode a table with a table bundle's feature spec, vocabularies and statistics, "
        "score every row, and write the predictions as CSV or Parquet (by --out's extension). "
        "The table is read and written chunk by chunk, so it may be larger than memory.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, metavar="DIR", help="the table bundle folder")
    parser.add_argument("--data", required=True, metavar="FILE", help="the table to score (.csv, .tsv, .parquet)")
    parser.add_argument("--out", required=True, metavar="FILE", help="where to write predictions (.parquet or .csv)")
    parser.add_argument("--keep", nargs="+", default=[], metavar="COLUMN", help="input columns to copy to --out")
    parser.add_argument("--batch-size", type=positive_int, default=16384, help="rows per forward pass")
    parser.add_argument("--json", action="store_true", help="print a JSON summary instead of text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    bundle = load_table(args.model)
    rows, metrics = predict_file(bundle, args.data, args.out, keep=args.keep, batch_size=args.batch_size)
    if args.json:
        print(json.dumps({"out": str(args.out), "rows": rows, "metrics": metrics}, indent=2))
        return 0
    print(f"wrote {rows:,} predictions to {args.out}")
    if metrics is not None:
        print(f"against the labels in {args.data}: {format_metrics(metrics)}")
    return 0
