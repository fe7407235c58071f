"""`dcnrank train`: train one DCN on a dataset (MovieLens 100K by default, or the release
`--dataset` names) or on one's own table with a feature spec, from a config, and save it as a bundle."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from dcnrank.bundle import check_bundle_target, load
from dcnrank.cli.common import add_dataset_flags, dataset_split, format_metrics, refuse_dataset_with_data
from dcnrank.config import TrainRunConfig, load_config, parse_override
from dcnrank.data.spec.feature_spec import FeatureSpec, load_feature_spec
from dcnrank.experiments.recipe import load_recipe
from dcnrank.training.distributed import world_from_env
from dcnrank.workflows.auto import auto_train
from dcnrank.workflows.evaluate import evaluate_table
from dcnrank.workflows.train import TableRunResult, train_table

# format_metrics: for cli/predict
__all__ = ["DEFAULT_DATASET", "format_metrics", "print_summary", "register", "run", "run_config"]

# what `dcnrank train` trains on without --data or --dataset
DEFAULT_DATASET = "movielens-100k"

EXAMPLES = """examples:
  dcnrank train --out runs/dcn                   # the recipe (configs/movielens_100k.toml) on MovieLens 100K, u1
  dcnrank train --split u3 --out runs/dcn_u3     # the recipe on GroupLens' fold u3 (same as data.split=u3)
  dcnrank train --config configs/seed_dcn.toml --out runs/seed       # the seed's stacked DCN
  dcnrank train --config configs/seed_dcn.toml model.projection_dim=20 --out runs/low_rank
  dcnrank train model.structure=deep_only model.deep_units=[192,192,192] --out runs/deep
  dcnrank train train.epochs=1 data.max_train_rows=4096 --out /tmp/quick --json
  dcnrank train --checkpoint-dir runs/dcn.ckpt --out runs/dcn            # checkpoint as it trains
  dcnrank train --checkpoint-dir runs/dcn.ckpt --resume --out runs/dcn   # after a crash: same args + --resume
  dcnrank evaluate --model runs/dcn                                      # its split's test rows again

  another MovieLens release (one row per rating, its shipped spec with roles):
  dcnrank train --dataset movielens-1m --data-dir ~/data --split temporal --out runs/ml1m

  your own table (CSV or Parquet) described by a feature spec (see docs/own_data.md):
  dcnrank train --data clicks.parquet --spec clicks.toml --out runs/ctr
  dcnrank train --data clicks.csv --spec clicks.toml model.structure=cross_only \\
      model.num_cross_layers=2 model.embedding_dim=8 data.patience=1 --out runs/ctr

Every run reads its rows as a table with a feature spec, trains with early stopping on a held-out
slice of the training rows and saves a table bundle. A dataset run (without --data) trains on the
training rows of its split (--split or data.split; default: the release's, u1 for 100K) and prints
the test rows' metrics too; the bundle records the dataset and split, so `dcnrank evaluate --model DIR`
finds them again.

without --config, every run starts from the recipe of docs/recipe.md (shipped in the package; the
same as configs/movielens_100k.toml): its [model] and [train] settings (a 2-layer low-rank stacked
DCN, bias terms, histories, clipped outputs, dropout 0.1, shuffled batches of 256, lr 0.002, weight
decay 0.02, up to 60 epochs) and early stopping after data.patience=4 epochs on a 10% held-out slice.
A run keeps only the levers its spec's roles allow (bias terms and histories need user and item
columns); --config FILE replaces the recipe whole.
overrides are section.field=value with a TOML value (bare words are strings, `none` unsets);
sections: model (DCNConfig), train (TrainConfig), data (split, data_dir: dataset runs only, refused
with --data; seed, validation_fraction, validation, patience, max_train_rows; stream, shuffle_buffer,
validation_max_rows: --data files only). Give them in one group, before or after the options.
"""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "train",
        help="train one model on a dataset or your own table and save it as a bundle",
        description="Train a DCN, by default the recommended recipe (configs/movielens_100k.toml: bias "
        "terms, the user's and the item's histories, clipped outputs) on MovieLens 100K's fold u1. "
        "Hold out data.validation_fraction of the training rows, stop after data.patience epochs "
        "without a better validation AUC or RMSE (data.monitor), keep the best epoch and save a table "
        "bundle (weights, config, spec, vocabularies, catalogue, metrics) to --out; a dataset run also "
        "prints the metrics of its split's test rows. With --dataset, train on another MovieLens "
        "release; with --data and --spec, on your own CSV or Parquet table.",
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
        "--data", default=None, metavar="FILE", help="train on this CSV or Parquet table instead of a dataset"
    )
    parser.add_argument("--spec", default=None, metavar="SPEC.toml", help="the feature spec of --data")
    add_dataset_flags(
        parser,
        "where the dataset is: the release's folder (e.g. ml-100k/) or one holding it (same as data.data_dir=DIR)",
        f"default: {DEFAULT_DATASET}, unless --data",
        "same as data.split=NAME",
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
        help="train on the CPU (default) or on CUDA (under torchrun: GPU LOCAL_RANK, NCCL)",
    )
    parser.add_argument(
        "--auto",
        action="store_true",
        help="train a few candidate settings (dcnrank.workflows.auto.AUTO_CANDIDATES) on the same "
        "validation rows and keep the best by the task's metric; costs one training per candidate",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars or log lines")
    parser.add_argument("--json", action="store_true", help="print a JSON summary instead of text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.resume and args.checkpoint_dir is None:
        raise ValueError("--resume needs --checkpoint-dir: the folder of the checkpoint to continue")
    refuse_dataset_with_data(args)
    if args.auto and args.checkpoint_dir is not None:
        raise ValueError("--auto trains several candidates; --checkpoint-dir and --resume go with one run")
    if args.data is not None or args.spec is not None:
        return run_table(args)
    return run_dataset(args)


def run_config(config_file: str | None, overrides: Sequence[str]) -> TrainRunConfig:
    """A run's config: `--config FILE` as it is, else the recipe, with the overrides applied.

    Example:
        >>> run_config(None, ["train.epochs=3"]).model.use_bias_terms
        True
    """
    if config_file is not None:
        return load_config(config_file, overrides)
    return load_recipe(overrides)


def run_table(args: argparse.Namespace) -> int:
    """`--data FILE --spec SPEC.toml`: train on one's own table."""
    if args.data is None or args.spec is None:
        given, other = ("--data", "--spec") if args.data is not None else ("--spec", "--data")
        raise ValueError(f"{given} needs {other}: a table is trained with its feature spec")
    for flag, value in (("--split", args.split), ("--data-dir", args.data_dir)):
        if value is not None:
            raise ValueError(f"{flag} goes with a dataset run; --data FILE is split by data.validation_fraction. "
                             f"Received: {flag} {value}")  # fmt: skip
    config = run_config(args.config, args.overrides)
    spec = load_feature_spec(args.spec)
    result = train(args, config, spec, args.data)
    if not world_from_env().is_main:  # under torchrun, rank 0 speaks for all
        return 0
    summary = result.summary()
    return print_summary(
        summary,
        args.json,
        "",
        f"validation ({summary['validation']['rows']:,} held-out rows): {format_metrics(summary['validation'])}",
    )


def train(
    args: argparse.Namespace,
    config: TrainRunConfig,
    spec: FeatureSpec,
    data: Any,
    dataset: dict[str, Any] | None = None,
) -> TableRunResult:
    """`train_table`, or with `--auto` `auto_train` (whose candidates it prints)."""
    progress = False if args.quiet else None
    if not args.auto:
        return train_table(
            config, spec, data, args.out, progress=progress, checkpoint_dir=args.checkpoint_dir, resume=args.resume,
            device=args.device, dataset=dataset,
        )  # fmt: skip
    result = auto_train(config, spec, data, args.out, progress=progress, device=args.device, dataset=dataset)
    if not args.json:
        auto = result.metrics["auto"]
        metric = auto["metric"]
        print(f"--auto: {len(auto['candidates'])} candidates in {auto['seconds']:.1f} s, by validation {metric[4:]}:")
        for name, entry in auto["candidates"].items():
            value = "undefined" if entry[metric] is None else f"{entry[metric]:.4f}"
            mark = "  <- chosen" if name == auto["chosen"] else ""
            print(f"  {name:20s} {value:>9s}  best epoch {entry['best_epoch']:3d}  {entry['seconds']:7.1f} s{mark}")
    return result


def dataset_overrides(args: argparse.Namespace) -> list[str]:
    """The overrides, then `--split` and `--data-dir` as `data.split=...`, `data.data_dir=...`;
    a flag and an override of the same key are refused, whatever their values."""
    overrides = list(args.overrides)
    keys = {parse_override(text)[0] for text in overrides}
    for flag, key, value in (("--split", "data.split", args.split), ("--data-dir", "data.data_dir", args.data_dir)):
        if value is None:
            continue
        if key in keys:
            raise ValueError(f"{flag} and {key}=... set the same thing; give one. Received: {flag} {value}")
        overrides.append(f"{key}={json.dumps(value)}")
    return overrides


def run_dataset(args: argparse.Namespace) -> int:
    """`[--dataset NAME] [--split S]`: train on a MovieLens release's training rows, test on the others."""
    dataset = args.dataset if args.dataset is not None else DEFAULT_DATASET
    config = run_config(args.config, dataset_overrides(args))
    data = config.data
    if world_from_env().is_main:  # a mistyped --out is refused before the release is read
        check_bundle_target(args.out)
    source, split, train_rows, test_rows = dataset_split(dataset, data.split, data.seed, data.data_dir)
    result = train(args, config, source.spec, source.table.take(train_rows), {"dataset": dataset, "split": split})
    if not world_from_env().is_main:
        return 0
    test = evaluate_table(load(result.bundle_path), source.table.take(test_rows), source=f"{split} test rows")
    summary = {**result.summary(), "dataset": dataset, "split": split, "test": test}
    return print_summary(
        summary,
        args.json,
        f", validation {format_metrics(summary['validation'])}",
        f"test ({dataset}, split {split}, {test['rows']:,} rows): {format_metrics(test)}",
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
