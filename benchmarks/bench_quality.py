"""Rating quality on GroupLens' folds u1…u5: the recommended configuration beside the seed's
protocol and Surprise's baselines (`make bench-quality`).

For each fold the recommended configuration (configs/movielens_100k.toml) trains on the
fold's .base rows only (10% of them, at random, pick the best epoch) and is scored once on
the fold's .test rows. The seed's protocol (lr 0.01, 10 epochs, batch 1024, no validation)
runs on the same folds. With scikit-surprise importable (the `quality` extra), its
BaselineOnly, SVD, SVD++ and KNNBaseline run on the same folds too.

    DCNRANK_DATA=/path/holding/ml-100k python benchmarks/bench_quality.py [--config FILE] [--folds u1 u2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from dcnrank.config import load_config
from dcnrank.data import load_movielens, locate_movielens, split_indices
from dcnrank.experiments.movielens import run_movielens
from dcnrank.training.metrics import rmse
from dcnrank.training.trainer import Trainer
from dcnrank.workflows.train_run import fit_movielens

ROOT = Path(__file__).resolve().parent.parent
FOLDS = ("u1", "u2", "u3", "u4", "u5")
# Mean RMSE over u1…u5 reported for Surprise's algorithms (issue 6).
REFERENCE = {
    "Surprise BaselineOnly": 0.946,
    "Surprise SVD": 0.938,
    "Surprise SVD++": 0.922,
    "Surprise KNNBaseline": 0.920,
}


def recipe_fold(config_path: Path, fold: str, ratings, folder) -> tuple[float, float, float]:  # noqa: ANN001
    """Test RMSE, validation RMSE and training seconds of the configuration on one fold."""
    config = load_config(config_path, [f"data.split={fold}"])
    began = time.perf_counter()
    fitted = fit_movielens(config, ratings, folder)
    seconds = time.perf_counter() - began
    test = fitted.prepared.test
    predictions = Trainer(config.train).predict(fitted.model, test.features)
    return rmse(predictions, test.labels), fitted.stopping.best_val_rmse, seconds


def surprise_fold(fold: str, ratings, folder) -> dict[str, float]:  # noqa: ANN001
    """Surprise's baselines on one fold (the issue's reference rows), or {} without scikit-surprise.

    BaselineOnly, SVD and SVD++ with Surprise's defaults (seeded), and KNNBaseline on items
    with the pearson_baseline similarity, as in the issue's reference table.
    """
    try:
        import surprise
    except ImportError:
        return {}
    parts = split_indices(ratings, fold, 0, folder)
    reader = surprise.Reader(rating_scale=(1, 5))

    def raw(rows) -> list[tuple[str, str, float, None]]:  # noqa: ANN001
        return [(str(ratings.user_id[i]), str(ratings.movie_id[i]), float(ratings.user_rating[i]), None) for i in rows]

    data = surprise.Dataset.load_from_folds([], reader)  # no files: only for its construct_* helpers
    trainset = data.construct_trainset(raw(parts.train))
    testset = data.construct_testset(raw(parts.test))
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
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "movielens_100k.toml")
    parser.add_argument("--folds", nargs="+", default=list(FOLDS), choices=FOLDS)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    folder = locate_movielens(args.data_dir)
    ratings = load_movielens(folder)
    rows: dict[str, list[float]] = {"recipe": [], "recipe val": [], "recipe s": [], "seed": [], "seed s": []}
    others: dict[str, list[float]] = {}
    print(f"{'fold':5s} {'recipe RMSE':>11s} {'(val)':>7s} {'s':>6s} {'seed RMSE':>10s} {'s':>6s}  others")
    for fold in args.folds:
        test, val, seconds = recipe_fold(args.config, fold, ratings, folder)
        seed = run_movielens(args.data_dir, trials=1, split=fold, models=("cross",))
        rows["recipe"].append(test)
        rows["recipe val"].append(val)
        rows["recipe s"].append(seconds)
        rows["seed"].append(seed.models["cross"].rmse[0])
        rows["seed s"].append(seed.models["cross"].seconds)
        extra = surprise_fold(fold, ratings, folder)
        for name, value in extra.items():
            others.setdefault(name, []).append(value)
        print(
            f"{fold:5s} {test:11.4f} {val:7.4f} {seconds:6.1f} {rows['seed'][-1]:10.4f} {rows['seed s'][-1]:6.1f}  "
            + " ".join(f"{k} {v:.4f}" for k, v in extra.items())
        )
    print()
    print(f"recommended config ({args.config.name}): test RMSE {mean_std(rows['recipe'])} "
          f"(validation {mean_std(rows['recipe val'])}), {statistics.fmean(rows['recipe s']):.1f} s per fold")
    print(f"seed protocol (lr 0.01, 10 epochs, no validation): test RMSE {mean_std(rows['seed'])}, "
          f"{statistics.fmean(rows['seed s']):.1f} s per fold")
    for name, values in others.items():
        print(f"Surprise {name} (measured here): {mean_std(values)}")
    for name, value in REFERENCE.items():
        print(f"{name} (reference, mean u1…u5): {value:.3f}")


if __name__ == "__main__":
    main()
