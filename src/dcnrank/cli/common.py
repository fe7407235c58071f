"""Pieces every subcommand shares: common flags and the seed-style results table."""

from __future__ import annotations

import argparse

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
