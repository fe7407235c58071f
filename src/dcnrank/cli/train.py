"""`dcnrank train`: train one DCN on MovieLens, on a MovieLens release read as a table (`--dataset`),
or on one's own table with a feature spec, from a config, and save it as a bundle."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from dcnrank.bundle import load_table
from dcnrank.cli.common import add_dataset_flags, dataset_split, format_metrics, refuse_dataset_with_data
from dcnrank.config import TrainRunConfig, load_config
from dcnrank.config.data_config import MOVIELENS_ONLY_KEYS, movielens_key_resets, refuse_changed
from dcnrank.data.feature_spec import load_feature_spec
from dcnrank.experiments.recipe import load_recipe
from dcnrank.training.distributed import world_from_env
from dcnrank.workflows import train_run
from dcnrank.workflows.evaluation import evaluate_table
from dcnrank.workflows.table_run import train_table

__all__ = ["format_metrics", "print_summary", "register", "run", "table_run_config"]  # format_metrics: cli/predict

EXAMPLES = """examples:
  dcnrank train --out runs/dcn                   # the MovieLens recipe (configs/movielens_100k.toml) on u1
  dcnrank train data.split=u3 --out runs/dcn_u3  # the recipe on GroupLens' fold u3
  dcnrank train --config configs/seed_dcn.toml --out runs/seed       # the seed's stacked DCN
  dcnrank train --config configs/seed_dcn.toml model.projection_dim=20 --out runs/low_rank
  dcnrank train model.structure=deep_only model.deep_units=[192,192,192] --out runs/deep
  dcnrank train train.epochs=1 data.max_train_rows=4096 --out /tmp/quick --json
  dcnrank train --checkpoint-dir runs/dcn.ckpt --out runs/dcn            # checkpoint as it trains
  dcnrank train --checkpoint-dir runs/dcn.ckpt --resume --out runs/dcn   # after a crash: same args + --resume

  a MovieLens release as a table (one row per rating, its shipped spec with roles), a table bundle:
  dcnrank train --dataset movielens-100k --out runs/ml                 # the recipe on GroupLens' u1
  dcnrank train --dataset movielens-100k --split u3 --out runs/ml_u3
  dcnrank train --dataset movielens-1m --data-dir ~/data --split temporal --out runs/ml1m
  dcnrank evaluate --model runs/ml --dataset movielens-100k --split u1    # its test rows

  your own table (CSV or Parquet) described by a feature spec (see docs/own_data.md):
  dcnrank train --data clicks.parquet --spec clicks.toml --out runs/ctr
  dcnrank train --data clicks.csv --spec clicks.toml model.structure=cross_only \\
      model.num_cross_layers=2 model.embedding_dim=8 data.patience=1 --out runs/ctr

without --config, every run starts from the recipe of docs/recipe.md (shipped in the package; the
same as configs/movielens_100k.toml): its [model] and [train] settings (a 2-layer low-rank stacked
DCN, bias terms, histories, clipped outputs, dropout 0.1, shuffled batches of 256, lr 0.002, weight
decay 0.02, up to 60 epochs) and early stopping after data.patience=4 epochs on a 10% held-out slice.
A --data or --dataset run keeps only the levers its spec's roles allow (bias terms and histories need
user and item columns) and none of the recipe's MovieLens-only keys (data.split, data.vocab,
data.data_dir), which such a run refuses when you set them; --config FILE replaces the recipe whole.
overrides are section.field=value with a TOML value (bare words are strings, `none` unsets);
sections: model (DCNConfig), train (TrainConfig), data (split, vocab, seed, data_dir,
validation_fraction, patience, max_train_rows; with --data or --dataset not the first three). Give them
in one group, before or after the options.
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
        "for `dcnrank predict` and `dcnrank evaluate`. With --dataset, train the same way on a MovieLens "
        "release read as one table with its shipped spec, on the training rows of --split.",
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
    parser.add_argument(
        "--data", default=None, metavar="FILE", help="train on this CSV or Parquet table instead of MovieLens"
    )
    parser.add_argument("--spec", default=None, metavar="SPEC.toml", help="the feature spec of --data")
    add_dataset_flags(
        parser,
        "where MovieLens is: ml-100k/ itself or a folder holding it (same as data.data_dir=...); "
        "with --dataset, the release's folder or one holding it",
    )
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
    refuse_dataset_with_data(args)
    if args.dataset is not None:
        return run_dataset(args)
    if args.split is not None:
        raise ValueError(
            f"--split goes with --dataset; the MovieLens run without it takes data.split={args.split}. "
            f"Received: --split {args.split}"
        )
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


def table_run_config(config_file: str | None, overrides: Sequence[str]) -> TrainRunConfig:
    """A `--data` or `--dataset` run's config: `--config FILE` as it is, else the recipe (its
    `[model]`, `[train]` and `data.seed`, `validation_fraction`, `patience`) with its MovieLens-only
    keys back at their defaults, so that only the user's own `data.split` etc. are refused."""
    if config_file is not None:
        return load_config(config_file, overrides)
    return load_recipe([*movielens_key_resets(), *overrides])


def run_table(args: argparse.Namespace) -> int:
    """`--data FILE --spec SPEC.toml`: train on one's own table."""
    if args.data is None or args.spec is None:
        given, other = ("--data", "--spec") if args.data is not None else ("--spec", "--data")
        raise ValueError(f"{given} needs {other}: a table is trained with its feature spec")
    if args.data_dir is not None:
        raise ValueError("--data-dir is MovieLens' folder; it does not go with --data")
    config = table_run_config(args.config, args.overrides)
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


def run_dataset(args: argparse.Namespace) -> int:
    """`--dataset NAME [--split S]`: train on a MovieLens release's training rows, test on the others."""
    config = table_run_config(args.config, args.overrides)
    refuse_changed(
        config.data,
        MOVIELENS_ONLY_KEYS,
        "a --dataset run takes its split from --split and its folder from --data-dir",
    )
    source, split, train_rows, test_rows = dataset_split(args.dataset, args.split, config.data.seed, args.data_dir)
    result = train_table(
        config,
        source.spec,
        source.table.take(train_rows),
        args.out,
        progress=False if args.quiet else None,
        checkpoint_dir=args.checkpoint_dir,
        resume=args.resume,
        device=args.device,
    )
    if not world_from_env().is_main:
        return 0
    test = evaluate_table(load_table(result.bundle_path), source.table.take(test_rows), source=f"{split} test rows")
    summary = {**result.summary(), "dataset": args.dataset, "split": split, "test": test}
    return print_summary(
        summary,
        args.json,
        f", validation {format_metrics(summary['validation'])}",
        f"test ({args.dataset}, split {split}, {test['rows']:,} rows): {format_metrics(test)}",
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
