"""Rating quality on GroupLens' folds u1…u5: the recommended configuration beside the seed's
protocol and Surprise's baselines (`make bench-quality`).

For each fold the recommended configuration (configs/movielens_100k.toml) trains through the
pipeline `dcnrank train --split FOLD` runs: the MovieLens 100K source's rows of the fold's
.base file, read as a table with the source's spec, into a table bundle (`train_table`; 10% of
the rows, at random, pick the best epoch); the saved bundle then predicts the fold's .test rows
once (`evaluate_table`). The seed's protocol (lr 0.01, 10 epochs, batch 1024, no validation)
runs on the same folds. With scikit-surprise importable (the `quality` extra), its
BaselineOnly, SVD, SVD++ and KNNBaseline run on the same folds too.

The table section (`--section tables`) trains the same configuration with its defaults on the
five tables of `benchmarks/quality_tables.py` (MovieLens 100K as ratings and as clicks, the
Criteo-layout generator, two click logs of known structure), each for seeds 0, 1, 2, beside
LightGBM on the categorical codes (the `quality` extra; early stopping on the same validation
rows), a logistic (ridge, for ratings) regression on one-hot features, and SVD++ on the
ratings: test AUC and log loss for clicks, RMSE for ratings, mean ± std over the seeds.

    DCNRANK_DATA=/path/holding/ml-100k python benchmarks/bench_quality.py [--config FILE] [--folds u1 u2]
    python benchmarks/bench_quality.py --section tables --seeds 0 --tables criteo-like
    python benchmarks/bench_quality.py --folds u1 --no-seed --no-surprise train.epochs=1   # a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from dcnrank.bundle import load
from dcnrank.config import TrainRunConfig, load_config
from dcnrank.data.sources import MovieLensSource, load_movielens_source
from dcnrank.experiments.movielens import run_movielens
from dcnrank.workflows.evaluate import evaluate_table
from dcnrank.workflows.train import train_table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality_tables import TABLES, Job, run_jobs  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FOLDS = ("u1", "u2", "u3", "u4", "u5")
DATASET = "movielens-100k"
# Mean RMSE over u1…u5 reported for Surprise's algorithms (issue 6).
REFERENCE = {
    "Surprise BaselineOnly": 0.946,
    "Surprise SVD": 0.938,
    "Surprise SVD++": 0.922,
    "Surprise KNNBaseline": 0.920,
}


def train_fold(config: TrainRunConfig, source: MovieLensSource, fold: str, device: str = "cpu") -> dict[str, Any]:
    """Train `config` on one fold's training rows as `dcnrank train --split FOLD` does, then score
    the saved bundle on the fold's test rows: validation and test RMSE, best epoch, seconds.

    The test rows are read once, after training; nothing chooses by them.
    """
    train_rows, test_rows = source.split_rows(fold, config.data.seed)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dcnrank-bench-") as folder:
        result = train_table(
            config,
            source.spec,
            source.table.take(train_rows),
            Path(folder) / "bundle",
            device=device,
            dataset={"dataset": DATASET, "split": fold},
        )
        seconds = time.perf_counter() - began
        test = evaluate_table(load(result.bundle_path), source.table.take(test_rows), source=f"{fold} test rows")
    validation = result.metrics["validation"]
    return {
        "val_rmse": validation["rmse"],
        "best_epoch": validation["best_epoch"],
        "test_rmse": test["rmse"],
        "seconds": seconds,
    }


def surprise_fold(fold: str, source: MovieLensSource) -> dict[str, float]:
    """Surprise's baselines on one fold (the issue's reference rows), or {} without scikit-surprise.

    BaselineOnly, SVD and SVD++ with Surprise's defaults (seeded), and KNNBaseline on items
    with the pearson_baseline similarity, as in the issue's reference table.
    """
    try:
        import surprise
    except ImportError:
        return {}
    train_rows, test_rows = source.split_rows(fold, 0)
    spec = source.spec
    users = source.table.column(spec.user).to_pylist()
    items = source.table.column(spec.item).to_pylist()
    labels = source.table.column(spec.label).to_pylist()
    reader = surprise.Reader(rating_scale=(1, 5))

    def raw(rows) -> list[tuple[str, str, float, None]]:  # noqa: ANN001
        return [(str(users[i]), str(items[i]), float(labels[i]), None) for i in rows]

    data = surprise.Dataset.load_from_folds([], reader)  # no files: only for its construct_* helpers
    trainset = data.construct_trainset(raw(train_rows))
    testset = data.construct_testset(raw(test_rows))
    algorithms = {
        "BaselineOnly": surprise.BaselineOnly(verbose=False),
        "SVD": surprise.SVD(random_state=0),
        "SVD++": surprise.SVDpp(random_state=0),
        "KNNBaseline": surprise.KNNBaseline(
            sim_options={"name": "pearson_baseline", "user_based": False}, verbose=False
        ),
    }
    scores = {}
    for name, algorithm in algorithms.items():
        algorithm.fit(trainset)
        scores[name] = surprise.accuracy.rmse(algorithm.test(testset), verbose=False)
    return scores


def mean_std(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.4f} ± {std:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides of --config (quick checks)")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "movielens_100k.toml")
    parser.add_argument("--folds", nargs="+", default=list(FOLDS), choices=FOLDS)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--no-seed", action="store_true", help="skip the seed's protocol")
    parser.add_argument("--no-surprise", action="store_true", help="skip Surprise's baselines")
    parser.add_argument("--section", choices=("folds", "tables", "all"), default="all")
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=TABLES)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=1, help="table runs side by side (seconds then mislead)")
    parser.add_argument("--json", type=Path, default=None, help="keep the table runs here (resumed when it exists)")
    args = parser.parse_args()
    if args.section in ("folds", "all"):
        folds_section(args)
    if args.section in ("tables", "all"):
        tables_section(args)


def tables_section(args: argparse.Namespace) -> None:
    """dcnrank's defaults beside LightGBM, a linear model and SVD++ on every table, over seeds."""
    data_dir = args.data_dir or os.environ.get("DCNRANK_DATA")
    models = ("dcnrank", "lightgbm", "linear", "svd++")
    jobs = [
        Job(table, seed, model, str(args.config), tuple(args.overrides), data_dir)
        for table in args.tables
        for seed in args.seeds
        for model in models
    ]
    done: dict[str, Any] = json.loads(args.json.read_text()) if args.json and args.json.exists() else {}

    def save(results: dict[str, Any]) -> None:
        if args.json is not None:
            args.json.write_text(json.dumps(results, indent=1))

    print(f"\ntables: {args.config.name} with its defaults; test metrics, mean ± std over seeds {args.seeds}")
    run_jobs(jobs, args.workers, done, save)
    print(
        f"\n{'table':18s} {'model':9s} {'test AUC':>17s} {'test logloss':>17s} {'test RMSE':>17s} {'val':>8s} {'s':>6s}"
    )
    for table in args.tables:
        for model in models:
            runs = [done.get(f"{table}|{seed}|{model}") for seed in args.seeds]
            runs = [r for r in runs if r]
            if not runs:
                continue
            cells = [
                mean_std([r[k] for r in runs]) if k in runs[0] else "-"
                for k in ("test_auc", "test_logloss", "test_rmse")
            ]
            val_key = "val_auc" if "val_auc" in runs[0] else "val_rmse"
            val = f"{statistics.fmean(r[val_key] for r in runs):8.4f}" if val_key in runs[0] else f"{'-':>8s}"
            seconds = statistics.fmean(r["seconds"] for r in runs)
            print(f"{table:18s} {model:9s} {cells[0]:>17s} {cells[1]:>17s} {cells[2]:>17s} {val} {seconds:6.1f}")


def folds_section(args: argparse.Namespace) -> None:
    """The recommended configuration on GroupLens' folds beside the seed's protocol and Surprise."""
    torch.set_num_threads(max(1, torch.get_num_threads()))
    source = load_movielens_source(DATASET, data_dir=args.data_dir)
    rows: dict[str, list[float]] = {"recipe": [], "recipe val": [], "recipe s": [], "seed": [], "seed s": []}
    others: dict[str, list[float]] = {}
    print(f"{'fold':5s} {'recipe RMSE':>11s} {'(val)':>7s} {'s':>6s} {'seed RMSE':>10s} {'s':>6s}  others")
    for fold in args.folds:
        config = load_config(args.config, [*args.overrides, f"data.split={fold}"])
        scores = train_fold(config, source, fold, args.device)
        rows["recipe"].append(scores["test_rmse"])
        rows["recipe val"].append(scores["val_rmse"])
        rows["recipe s"].append(scores["seconds"])
        seed_cells = ""
        if not args.no_seed:
            seed = run_movielens(args.data_dir, trials=1, split=fold, models=("cross",), device=args.device)
            rows["seed"].append(seed.models["cross"].rmse[0])
            rows["seed s"].append(seed.models["cross"].seconds)
            seed_cells = f"{rows['seed'][-1]:10.4f} {rows['seed s'][-1]:6.1f}"
        extra = {} if args.no_surprise else surprise_fold(fold, source)
        for name, value in extra.items():
            others.setdefault(name, []).append(value)
        print(
            f"{fold:5s} {scores['test_rmse']:11.4f} {scores['val_rmse']:7.4f} {scores['seconds']:6.1f} "
            f"{seed_cells or '-':>17s}  " + " ".join(f"{k} {v:.4f}" for k, v in extra.items())
        )
    print()
    print(
        f"recommended config ({args.config.name}): test RMSE {mean_std(rows['recipe'])} "
        f"(validation {mean_std(rows['recipe val'])}), {statistics.fmean(rows['recipe s']):.1f} s per fold"
    )
    if rows["seed"]:
        print(
            f"seed protocol (lr 0.01, 10 epochs, no validation): test RMSE {mean_std(rows['seed'])}, "
            f"{statistics.fmean(rows['seed s']):.1f} s per fold"
        )
    for name, values in others.items():
        print(f"Surprise {name} (measured here): {mean_std(values)}")
    for name, value in REFERENCE.items():
        print(f"{name} (reference, mean u1…u5): {value:.3f}")


if __name__ == "__main__":
    main()
