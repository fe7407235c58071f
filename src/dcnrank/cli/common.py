"""Pieces every subcommand shares: common flags, `--dataset` sources, metric lines and the seed-style results table."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from dcnrank.data.sources import DATASETS, MovieLensSource, load_movielens_source
from dcnrank.experiments.report import format_rmse
from dcnrank.experiments.result import ExperimentResult
from dcnrank.experiments.seed_reference import SEED_RESULTS


def add_run_flags(parser: argparse.ArgumentParser, out: str) -> None:
    """`--seed`, `--out`, `--quiet`: what every experiment command takes."""
    parser.add_argument("--seed", type=int, default=0, help="seeds data and trials (default: 0)")
    parser.add_argument("--out", default=out, help=f"output folder (default: {out})")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or log lines")
    parser.add_argument(
        "--precision", choices=("fp32", "bf16"), default="fp32",
        help="fp32 (default) or bf16 matrix products (autocast; weights stay fp32)",
    )  # fmt: skip
    parser.add_argument("--device", default="cpu", help="where to train: cpu (default), cuda, cuda:1, ...")
    parser.add_argument(
        "--sequential", action="store_true",
        help="train trials one after another instead of stacked together (same numbers, slower)",
    )  # fmt: skip


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def results_table(result: ExperimentResult, labels: dict[str, str]) -> str:
    """Our RMSE (mean ± std over trials), #params and time beside the seed's figures."""
    seed = SEED_RESULTS.get(result.experiment, {})
    rows = [("model", "RMSE (ours)", "#params", "seconds", "seed RMSE", "seed #params")]
    for name, m in result.models.items():
        ours = format_rmse(m.rmse_mean, m.rmse_std if len(m.rmse) > 1 else None)
        if name in seed:
            mean, std, params = seed[name]
            theirs = format_rmse(mean, std)
            their_params = f"{params:,}"
        else:
            theirs = their_params = "-"
        rows.append((labels.get(name, name), ours, f"{m.params:,}", f"{m.seconds:.1f}", theirs, their_params))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def add_dataset_flags(
    parser: argparse.ArgumentParser, data_dir_help: str, dataset_note: str = "", split_note: str = ""
) -> None:
    """`--dataset NAME`, `--split NAME`, `--data-dir DIR`: a MovieLens release as a table source;
    `dataset_note` and `split_note` end the first two's help (their default, say)."""
    parser.add_argument(
        "--dataset", choices=tuple(DATASETS), default=None,
        help="a MovieLens release as one table with its shipped spec (dcnrank.data.sources.movielens)"
        + (f"; {dataset_note}" if dataset_note else ""),
    )  # fmt: skip
    parser.add_argument(
        "--split", default=None,
        help="u1-u5, ua, ub (GroupLens' files, 100K only), random, temporal, leaky (100K); "
        "default: u1 for 100K, else random" + (f"; {split_note}" if split_note else ""),
    )  # fmt: skip
    parser.add_argument("--data-dir", default=None, metavar="DIR", help=data_dir_help)


def dataset_split(
    dataset: str, split: str | None, seed: int, data_dir: str | None
) -> tuple[MovieLensSource, str, np.ndarray, np.ndarray]:
    """Read `dataset` and cut its `split` (None: the release's default): the source, the split's
    name, and its training and test rows.

    Raises:
        MovieLensNotFoundError: if the release is nowhere and cannot be fetched.
        ValueError: if the release has no split `split`.
    """
    source = load_movielens_source(dataset, data_dir=data_dir)
    name = split if split is not None else source.default_split
    train_rows, test_rows = source.split_rows(name, seed)
    return source, name, train_rows, test_rows


def refuse_dataset_with_data(args: argparse.Namespace) -> None:
    """`--dataset` and `--data`/`--spec` name two different tables: refuse the pair."""
    given = [flag for flag, value in (("--data", args.data), ("--spec", getattr(args, "spec", None))) if value]
    if args.dataset is not None and given:
        raise ValueError(
            f"--dataset and {' and '.join(given)} do not go together: a run reads a MovieLens release "
            f"(--dataset {args.dataset}, with its own spec) or your table (--data FILE). Received both"
        )


def format_metrics(metrics: dict[str, Any]) -> str:
    """`AUC 0.7712, logloss 0.4521, GAUC 0.7013 (812 groups)` or `RMSE 0.91, MAE 0.72`, then
    `NDCG@10 0.81, MAP@10 0.70, MRR 0.9` when there are ranking metrics (a ranking task's alone,
    with its number of groups).

    Example:
        >>> format_metrics({"rmse": 0.9, "mae": 0.7, "ndcg@10": 0.8, "map@10": 0.75})
        'RMSE 0.9000, MAE 0.7000, NDCG@10 0.8000, MAP@10 0.7500'
        >>> format_metrics({"ndcg@10": 0.8, "mrr": 0.5, "groups": 943})
        'NDCG@10 0.8000, MRR 0.5000 (943 groups)'
    """
    parts = []
    if "rmse" in metrics:
        parts.append(f"RMSE {metrics['rmse']:.4f}, MAE {metrics['mae']:.4f}")
    elif "auc" in metrics:
        auc = "n/a (one class only)" if metrics["auc"] is None else f"{metrics['auc']:.4f}"
        text = f"AUC {auc}, logloss {metrics['logloss']:.4f}"
        if "group_auc" in metrics:
            gauc = "n/a" if metrics["group_auc"] is None else f"{metrics['group_auc']:.4f}"
            text += f", GAUC {gauc} ({metrics['groups']:,} groups)"
        parts.append(text)
    for name in metrics:
        if name.startswith(("ndcg@", "map@")) or name == "mrr":
            parts.append(f"{name.upper()} {metrics[name]:.4f}")
    text = ", ".join(parts)
    if "auc" not in metrics and "groups" in metrics:  # a ranking task's metrics are by group
        text += f" ({metrics['groups']:,} groups)"
    return text
