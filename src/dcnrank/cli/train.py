"""`dcnrank train`: train one DCN on MovieLens, or on one's own table with a feature spec,
from a config, and save it as a bundle."""

from __future__ import annotations

import argparse
import json
from typing import Any

from dcnrank.config import load_config
from dcnrank.data.feature_spec import load_feature_spec
from dcnrank.experiments.recipe import load_recipe
from dcnrank.training.distributed import world_from_env
from dcnrank.workflows import train_run
from dcnrank.workflows.table_run import train_table

EXAMPLES = """examples:
  dcnrank train --out runs/dcn                   # the MovieLens recipe (configs/movielens_100k.toml) on u1
  dcnrank train data.split=u3 --out runs/dcn_u3  # the recipe on GroupLens' fold u3
  dcnrank train --config configs/seed_dcn.toml --out runs/seed       # the seed's stacked DCN
  dcnrank train --config configs/seed_dcn.toml model.projection_dim=20 --out runs/low_rank
  dcnrank train model.structure=deep_only model.deep_units=[192,192,192] --out runs/deep
  dcnrank train train.epochs=1 data.max_train_rows=4096 --out /tmp/quick --json
  dcnrank train --checkpoint-dir runs/dcn.ckpt --out runs/dcn            # checkpoint as it trains
  dcnrank train --checkpoint-dir runs/dcn.ckpt --resume --out runs/dcn   # after a crash: same args + --resume

  your own table (CSV or Parquet) described by a feature spec (see docs/own_data.md):
  dcnrank train --data clicks.parquet --spec clicks.toml --out runs/ctr
  dcnrank train --data clicks.csv --spec clicks.toml model.structure=cross_only \\
      model.num_cross_layers=2 model.embedding_dim=8 data.patience=1 --out runs/ctr

without --config, a MovieLens run starts from the recipe of docs/recipe.md (shipped in the
package; the same as configs/movielens_100k.toml) and a --data run from the built-in defaults.
overrides are section.field=value with a TOML value (bare words are strings, `none` unsets);
sections: model (DCNConfig), train (TrainConfig), data (split, vocab, seed, data_dir,
validation_fraction, patience, max_train_rows; with --data only the last four). Give them in one group, before or after
the options.
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "train",
        help="train one model on MovieLens and save it as a bundle",
        description="Train a DCN on MovieLens 100K: by default the recommended recipe "
        "(configs/movielens_100k.toml: bias terms, genres and year, the user's and the item's "
        "rating histories, on GroupLens' fold u1). Hold out data.validation_fraction of the "
        "training split, stop after data.patience epochs without a better validation "
        "RMSE, keep the best epoch, test it, and save a bundle (weights, config, vocabularies, "
        "metrics) to --out. With --data and --spec, train on your own CSV or Parquet table "
        "instead: a seeded random data.validation_fraction of its rows is held out, training stops "
        "after data.patience epochs without a lower validation loss, and --out gets a table bundle "
        "for `dcnrank predict`.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    parser.add_argument("--config", default=None, metavar="FILE.toml", help="a TOML run config")
    parser.add_argument(
        "--out", required=True, metavar="DIR",
        help="the bundle folder to write: a new or empty folder, or a bundle to replace "
        "(anything else is refused before training)",
    )  # fmt: skip
    parser.add_argument("--data-dir", default=None, help="folder with ml-100k/ (same as data.data_dir=...)")
    parser.add_argument(
        "--data", default=None, metavar="FILE", help="train on this CSV or Parquet table instead of MovieLens"
    )
    parser.add_argument("--spec", default=None, metavar="SPEC.toml", help="the feature spec of --data")
    parser.add_argument(
        "--checkpoint-dir",
        default=None,
        metavar="DIR",
        help="write a checkpoint here every train.checkpoint_every steps and at each epoch end",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from --checkpoint-dir's checkpoint (same config and data); "
        "the result equals an uninterrupted run's. With no checkpoint there yet, train from the beginning",
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="train on the CPU (default) or on CUDA (with --data under torchrun: GPU LOCAL_RANK, NCCL)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars or log lines")
    parser.add_argument("--json", action="store_true", help="print a JSON summary instead of text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.resume and args.checkpoint_dir is None:
        raise ValueError("--resume needs --checkpoint-dir: the folder of the checkpoint to continue")
    if args.data is not None or args.spec is not None:
        return run_table(args)
    overrides = list(args.overrides)
    if args.data_dir is not None:
        overrides.append(f"data.data_dir={json.dumps(args.data_dir)}")
    # MovieLens without --config: the recipe; --config FILE replaces it as a whole
    config = load_config(args.config, overrides) if args.config is not None else load_recipe(overrides)
    result = train_run(
        config,
        args.out,
        progress=False if args.quiet else None,
        checkpoint_dir=args.checkpoint_dir,
        resume=args.resume,
        device=args.device,
    )
    summary = result.summary()
    test = summary["test"]
    return print_summary(
        summary,
        args.json,
        f", val RMSE {summary['val_rmse']:.4f}",
        f"test ({test['split']} split, {test['rows']} rows): RMSE {test['rmse']:.4f}, "
        f"MAE {test['mae']:.4f}, NDCG@10 {test['ndcg@10']:.4f}, MAP@10 {test['map@10']:.4f}",
    )


def run_table(args: argparse.Namespace) -> int:
    """`--data FILE --spec SPEC.toml`: train on one's own table."""
    if args.data is None or args.spec is None:
        given, other = ("--data", "--spec") if args.data is not None else ("--spec", "--data")
        raise ValueError(f"{given} needs {other}: a table is trained with its feature spec")
    if args.data_dir is not None:
        raise ValueError("--data-dir is MovieLens' folder; it does not go with --data")
    config = load_config(args.config, args.overrides)
    spec = load_feature_spec(args.spec)
    result = train_table(
        config,
        spec,
        args.data,
        args.out,
        progress=False if args.quiet else None,
        checkpoint_dir=args.checkpoint_dir,
        resume=args.resume,
        device=args.device,
    )
    if not world_from_env().is_main:  # under torchrun, rank 0 speaks for all
        return 0
    summary = result.summary()
    return print_summary(
        summary,
        args.json,
        "",
        f"validation ({summary['validation']['rows']:,} held-out rows): {format_metrics(summary['validation'])}",
    )


def print_summary(summary: dict[str, Any], as_json: bool, epoch_note: str, metrics_line: str) -> int:
    """Print a training run's summary: JSON, or best epoch, metrics and the saved bundle."""
    if as_json:
        print(json.dumps(summary, indent=2))
        return 0
    print(
        f"best epoch {summary['best_epoch']} of {summary['epochs_run']} run"
        f"{' (stopped early)' if summary['stopped_early'] else ''}{epoch_note}"
    )
    print(metrics_line)
    print(f"saved bundle {summary['bundle']} ({summary['parameters']:,} parameters, {summary['seconds']:.1f} s)")
    return 0


def format_metrics(metrics: dict[str, Any]) -> str:
    """`AUC 0.7712, logloss 0.4521, GAUC 0.7013 (812 groups)` or `RMSE 0.91, MAE 0.72`."""
    if "rmse" in metrics:
        return f"RMSE {metrics['rmse']:.4f}, MAE {metrics['mae']:.4f}"
    auc = "n/a (one class only)" if metrics["auc"] is None else f"{metrics['auc']:.4f}"
    text = f"AUC {auc}, logloss {metrics['logloss']:.4f}"
    if "group_auc" in metrics:
        gauc = "n/a" if metrics["group_auc"] is None else f"{metrics['group_auc']:.4f}"
        text += f", GAUC {gauc} ({metrics['groups']:,} groups)"
    return text
