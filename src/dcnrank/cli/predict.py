"""`dcnrank predict`: score a CSV or Parquet table with a bundle and write the predictions."""

from __future__ import annotations

import argparse
import json

from dcnrank.bundle import load
from dcnrank.cli.common import add_dataset_flags, dataset_split, format_metrics, positive_int, refuse_dataset_with_data
from dcnrank.workflows.predict import PREDICTION_COLUMN, check_predictions_out, predict_file

EXAMPLES = f"""examples:
  dcnrank predict --model runs/ctr --data new_clicks.parquet --out preds.parquet
  dcnrank predict --model runs/ctr --data test.csv --out preds.csv --keep request_id --json
  dcnrank predict --model runs/ml --dataset movielens-100k --split u1 --out u1_test_preds.csv --keep user_id movie_id

The output holds the --keep columns, then `{PREDICTION_COLUMN}` (a click probability for a
binary task, the predicted value for regression), one row per input row in input order.
When the table has the label column, the predictions are also measured (AUC, logloss and
group AUC for binary; RMSE and MAE for regression).

--out appears only once every row is written; an existing predictions file of that name
(a table whose last column is `{PREDICTION_COLUMN}`) is then replaced, any other existing
file is refused. --out may not be the --data table itself (nor a link to it) or a folder, and
--keep may not name `{PREDICTION_COLUMN}` or a column twice: these are refused before
anything is scored.
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "predict",
        help="score a CSV or Parquet table with a trained model",
        description="Encode a table with a bundle's feature spec, vocabularies and statistics, "
        "score every row, and write the predictions as CSV or Parquet (by --out's extension). "
        "The table is read and written chunk by chunk, so it may be larger than memory.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, metavar="DIR", help="the bundle folder")
    parser.add_argument("--data", default=None, metavar="FILE", help="the table to score (.csv, .tsv, .parquet)")
    add_dataset_flags(parser, "with --dataset: the folder holding the release")
    parser.add_argument(
        "--seed", type=int, default=None, help="with --dataset: seeds its split (default: the bundle's)"
    )
    parser.add_argument(
        "--out", required=True, metavar="FILE",
        help="where to write predictions (.parquet, .csv or .tsv); only an earlier predictions file is replaced",
    )  # fmt: skip
    parser.add_argument(
        "--keep", nargs="+", default=[], metavar="COLUMN",
        help=f"input columns to copy to --out (each once; not {PREDICTION_COLUMN!r}, the output's own column)",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=positive_int, default=16384, help="rows per forward pass")
    parser.add_argument("--json", action="store_true", help="print a JSON summary instead of text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    refuse_dataset_with_data(args)
    if args.data is None and args.dataset is None:
        raise ValueError("give the rows to score: --data FILE, or --dataset NAME [--split S] for a split's test rows")
    check_predictions_out(args.data, args.out)  # before the model is even loaded
    bundle = load(args.model)
    data = args.data
    if args.dataset is not None:
        seed = args.seed if args.seed is not None else int(bundle.train.get("data", {}).get("seed", 0))
        source, split, _, test_rows = dataset_split(args.dataset, args.split, seed, args.data_dir)
        data, args.data = source.table.take(test_rows), f"{args.dataset} split {split}'s test rows"
    rows, metrics = predict_file(bundle, data, args.out, keep=args.keep, batch_size=args.batch_size)
    if args.json:
        print(json.dumps({"out": str(args.out), "rows": rows, "metrics": metrics}, indent=2))
        return 0
    print(f"wrote {rows:,} predictions to {args.out}")
    if metrics is not None:
        print(f"against the labels in {args.data}: {format_metrics(metrics)}")
    return 0
