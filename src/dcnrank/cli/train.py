"""`dcnrank train`: train one DCN on MovieLens from a config and save it as a bundle."""

from __future__ import annotations

import argparse
import json

from dcnrank.config import load_config
from dcnrank.workflows import train_run

EXAMPLES = """examples:
  dcnrank train --out runs/dcn                                   # the seed's stacked DCN
  dcnrank train --config configs/seed_dcn.toml model.projection_dim=20 --out runs/low_rank
  dcnrank train model.structure=deep_only model.deep_units=[192,192,192] --out runs/deep
  dcnrank train train.epochs=1 data.max_train_rows=4096 --out /tmp/quick --json

overrides are section.field=value with a TOML value (bare words are strings, `none` unsets);
sections: model (DCNConfig), train (TrainConfig), data (split, vocab, seed, data_dir,
validation_fraction, patience, max_train_rows). Give them in one group, before or after
the options.
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "train",
        help="train one model on MovieLens and save it as a bundle",
        description="Train a DCN on MovieLens 100K: hold out the last data.validation_fraction "
        "of the training split, stop after data.patience epochs without a better validation "
        "RMSE, keep the best epoch, test it, and save a bundle (weights, config, vocabularies, "
        "metrics) to --out.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    parser.add_argument("--config", default=None, metavar="FILE.toml", help="a TOML run config")
    parser.add_argument("--out", required=True, metavar="DIR", help="the bundle folder to write")
    parser.add_argument("--data-dir", default=None, help="folder with ml-100k/ (same as data.data_dir=...)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or log lines")
    parser.add_argument("--json", action="store_true", help="print a JSON summary instead of text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.data_dir is not None:
        overrides.append(f"data.data_dir={json.dumps(args.data_dir)}")
    config = load_config(args.config, overrides)
    result = train_run(config, args.out, progress=False if args.quiet else None)
    summary = result.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    test = summary["test"]
    print(
        f"best epoch {summary['best_epoch']} of {summary['epochs_run']} run"
        f"{' (stopped early)' if summary['stopped_early'] else ''}, val RMSE {summary['val_rmse']:.4f}"
    )
    print(
        f"test ({test['split']} split, {test['rows']} rows): RMSE {test['rmse']:.4f}, "
        f"MAE {test['mae']:.4f}, NDCG@10 {test['ndcg@10']:.4f}, MAP@10 {test['map@10']:.4f}"
    )
    print(f"saved bundle {summary['bundle']} ({summary['parameters']:,} parameters, {summary['seconds']:.1f} s)")
    return 0
