"""Choose dcnrank's defaults on validation rows only, across several kinds of table.

Each stage trains its candidates (a configuration file plus `key=value` overrides) on every
table of `benchmarks/quality_tables.py` for each seed, with LightGBM and a linear model
beside them, and prints each candidate's **validation** metric per table (AUC for clicks,
RMSE for ratings) and its mean change against the stage's first candidate (AUC gained,
RMSE saved: both "higher is better"). Test metrics are stored in the JSON for the
closing record, never printed in the choice column and never used to choose. Results are
saved after every run, so an interrupted search resumes (run the same command again).

    python benchmarks/lever_search.py --stage ablation --out ablation.json
    python benchmarks/lever_search.py --stage ablation --tables criteo-like --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality_tables import ROOT, TABLES, Job, run_jobs  # noqa: E402

from dcnrank.atomic import replace_file  # noqa: E402

DEFAULTS = str(ROOT / "configs" / "movielens_100k.toml")

COMBINED = [
    "train.lr_decay=0.7",
    "data.monitor=metric",
    "model.embedding_l2=1e-5",
    "model.embedding_l2_scope=table",
    "model.numeric_buckets=16",
]
# stage -> candidate -> overrides of --base; the first candidate is the stage's reference
STAGES: dict[str, dict[str, list[str]]] = {
    # each lever alone on top of the defaults
    "ablation": {
        "defaults": [],
        "monitor AUC/RMSE": ["data.monitor=metric"],
        "embedding L2 1e-2 (batch rows)": ["model.embedding_l2=0.01"],
        "embedding L2 1e-5 (whole tables)": ["model.embedding_l2=1e-5", "model.embedding_l2_scope=table"],
        "batch norm": ["model.deep_norm=batch"],
        "lr decay 0.7 per epoch": ["train.lr_decay=0.7"],
        "average 3 best epochs": ["data.average_epochs=3"],
        "batch 1024": ["train.batch_size=1024"],
        "dropout 0.3": ["model.dropout=0.3"],
        "numeric buckets 16": ["model.numeric_buckets=16"],
        "no bias terms": ["model.use_bias_terms=false"],
        "no histories": ["model.user_history=false", "model.item_history=false"],
    },
    # the levers that gained on average in the ablation, together, and their strengths
    "combine": {
        "defaults": [],
        "decay+monitor+L2+buckets": [*COMBINED],
        "  + dropout 0.3": [*COMBINED, "model.dropout=0.3"],
        "  with decay 0.5": [*COMBINED, "train.lr_decay=0.5"],
        "  with lr 0.003": [*COMBINED, "train.learning_rate=0.003"],
        "  with L2 3e-5": [*COMBINED, "model.embedding_l2=3e-5"],
        "  without buckets": [*COMBINED, "model.numeric_buckets=0"],
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", choices=sorted(STAGES), required=True)
    parser.add_argument("--base", default=DEFAULTS, help="the configuration the candidates override")
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=TABLES)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data-dir", default=os.environ.get("DCNRANK_DATA"))
    parser.add_argument("--out", type=Path, required=True, help="JSON of every run (resumed when it exists)")
    args = parser.parse_args()
    candidates = STAGES[args.stage]
    done: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    jobs = [
        Job(table, seed, model, args.base, tuple(overrides), args.data_dir)
        for seed in args.seeds
        for table in args.tables
        for model, overrides in [*candidates.items(), ("lightgbm", []), ("linear", [])]
    ]
    run_jobs(jobs, args.workers, done, lambda d: replace_file(args.out, json.dumps(d, indent=1).encode()))
    print_table(done, list(candidates), args.tables, args.seeds)


def headline(table: str) -> str:
    return "rmse" if table == "movielens-ratings" else "auc"


def print_table(done: dict[str, Any], models: list[str], tables: list[str], seeds: list[int]) -> None:
    """Mean validation metric per table and model; the mean gain over the first model."""

    def value(table: str, model: str) -> float | None:
        found = [done.get(f"{table}|{s}|{model}") for s in seeds]
        values = [r[f"val_{headline(table)}"] for r in found if r]
        return statistics.fmean(values) if len(values) == len(seeds) else None

    print(f"\nvalidation metric, mean over seeds {seeds} (AUC for clicks, RMSE for ratings)")
    print(f"{'candidate':34s}" + "".join(f"{t[:18]:>19s}" for t in tables) + f"{'mean gain':>11s}")
    for model in [*models, "lightgbm", "linear"]:
        cells, gains = [], []
        for table in tables:
            v, ref = value(table, model), value(table, models[0])
            cells.append(f"{v:19.4f}" if v is not None else f"{'-':>19s}")
            if v is not None and ref is not None:
                gains.append((ref - v) if headline(table) == "rmse" else (v - ref))
        gain = f"{statistics.fmean(gains):+11.4f}" if len(gains) == len(tables) else f"{'-':>11s}"
        print(f"{model[:34]:34s}" + "".join(cells) + gain)


if __name__ == "__main__":
    main()
