"""Learning to rank on GroupLens' folds u1…u5: each test user's full list of test movies, NDCG@10
over graded ratings (gain 2^rating − 1), for the recipe trained with a ranking loss
(`task = "ranking"`, the user as the group), the same recipe trained pointwise with MSE
(`task = "regression"`), and LightGBM's `lambdarank` on the same features (the `quality` extra).
`--tables` also takes two click logs of `quality_tables` (MovieLens ratings ≥ 4 as clicks, and
a collaborative click log), ranked within users, the pointwise model trained with BCE.

Every model holds out the same 10% of a fold's training rows (`data.validation = "random"`,
`data.seed`): dcnrank picks its best epoch there (NDCG@10 for ranking, RMSE for MSE),
LightGBM its number of trees (NDCG@10). `--stage select` scores candidates on those
validation rows only (NDCG@10 by user), to choose the default ranking loss and its settings;
`--stage folds` then scores the chosen settings on the test rows, once per fold and seed.

    DCNRANK_DATA=/path/holding/ml-100k python benchmarks/ranking_folds.py --stage select --tables u1 \\
        collab-clicks --candidates pointwise lambda_rank softmax "lambda_rank:train.list_size=20"
    python benchmarks/ranking_folds.py --stage folds --seeds 0 1 2 --json ranking_folds.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from dcnrank.bundle import load
from dcnrank.config import TrainRunConfig, load_config
from dcnrank.data.holdout import validation_split
from dcnrank.data.sources import MovieLensSource, load_movielens_source
from dcnrank.data.spec.feature_spec import FeatureSpec
from dcnrank.metrics.ranking import ranking_metrics
from dcnrank.workflows.evaluate import evaluate_table
from dcnrank.workflows.train import train_table

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality_tables import _features, make_table  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "configs" / "movielens_100k.toml"
FOLDS = ("u1", "u2", "u3", "u4", "u5")
CLICK_TABLES = ("movielens-clicks", "collab-clicks")  # quality_tables' click logs with a user role
K = 10


def candidate_overrides(name: str) -> tuple[str | None, list[str]]:
    """The task and overrides of a candidate: ``pointwise`` (the table's own task: MSE for
    ratings, BCE for clicks; task None), a ranking loss name (``auto``: the default), or
    ``loss:key=value,key=value`` (a ranking loss with settings)."""
    if name == "pointwise":
        return None, []
    loss, _, settings = name.partition(":")
    return "ranking", [f"train.loss={loss}", *(s for s in settings.split(",") if s)]


@dataclasses.dataclass(frozen=True)
class RankingTable:
    """A table to rank within users: its spec (the user role), training rows and test rows."""

    name: str
    spec: FeatureSpec
    train: pa.Table
    test: pa.Table


def ranking_table(name: str, seed: int, source: MovieLensSource) -> RankingTable:
    """A MovieLens 100K fold (`u1`…`u5`, GroupLens' files) or a click table of `quality_tables`."""
    if name in FOLDS:
        train_rows, test_rows = source.split_rows(name, seed)
        return RankingTable(name, source.spec, source.table.take(train_rows), source.table.take(test_rows))
    table = make_table(name, seed)
    return RankingTable(name, table.spec, table.train, table.test)


def run_dcnrank(table: RankingTable, seed: int, candidate: str, test: bool) -> dict[str, Any]:
    """Train the recipe on the table's training rows as `candidate`; NDCG@10 by user on the
    validation rows (and, with `test`, on the test rows)."""
    task, overrides = candidate_overrides(candidate)
    fold = [f"data.split={table.name}"] if table.name in FOLDS else []
    config = load_config(RECIPE, [*overrides, *fold, f"data.seed={seed}", f"train.seed={seed}"])
    spec = table.spec if task is None else dataclasses.replace(table.spec, task=task)  # the group: the user
    _, val_rows = validation_split(table.train.num_rows, config.data.validation_fraction, "random", seed)
    dataset = {"dataset": "movielens-100k", "split": table.name} if fold else {"table": table.name}
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dcnrank-rank-") as folder:
        result = train_table(config, spec, table.train, Path(folder) / "bundle", dataset=dataset)
        seconds = time.perf_counter() - began
        bundle = load(result.bundle_path)
        scores = {"val": evaluate_table(bundle, table.train.take(val_rows.numpy()), k=K)[f"ndcg@{K}"],
                  "best_epoch": result.metrics["validation"]["best_epoch"], "seconds": seconds}  # fmt: skip
        if test:
            scores["test"] = evaluate_table(bundle, table.test, k=K)[f"ndcg@{K}"]
    return scores


def run_lambdarank(table: RankingTable, seed: int, config: TrainRunConfig) -> dict[str, Any] | None:
    """LightGBM `lambdarank` on the recipe's columns (codes as categorical features and as ordinal
    values, the better on validation), early stopping on the same validation rows; None without it."""
    try:
        import lightgbm
    except ImportError:
        return None
    began = time.perf_counter()
    spec = table.spec
    fit_rows, val_rows = validation_split(table.train.num_rows, config.data.validation_fraction, "random", seed)
    parts = [table.train.take(fit_rows.numpy()), table.train.take(val_rows.numpy()), table.test]
    (x_fit, x_val, x_test), names, kinds = _features(spec, parts[0], parts)
    users = [t.column(spec.user).to_numpy() for t in parts]
    labels = [t.column(spec.label).to_numpy().astype(np.int64) for t in parts]

    def grouped(i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        order = np.argsort(users[i], kind="stable")
        return order, labels[i][order], np.unique(users[i][order], return_counts=True)[1]

    (fit_order, y_fit, fit_groups), (val_order, y_val, val_groups) = grouped(0), grouped(1)
    best: dict[str, Any] | None = None
    for as_categories in (True, False):
        params = {
            "objective": "lambdarank", "metric": "ndcg", "eval_at": [K], "learning_rate": 0.05, "num_leaves": 31,
            "min_data_in_leaf": 20, "feature_fraction": 0.9, "bagging_fraction": 0.9, "bagging_freq": 1,
            "seed": seed, "verbose": -1, "num_threads": 2, "cat_smooth": 10, "max_cat_to_onehot": 8,
        }  # fmt: skip
        which = [n for n, k in zip(names, kinds, strict=True) if k == "categorical"] if as_categories else []
        fit = lightgbm.Dataset(x_fit[fit_order], y_fit, group=fit_groups, feature_name=names,
                               categorical_feature=which, free_raw_data=False)  # fmt: skip
        val = lightgbm.Dataset(x_val[val_order], y_val, group=val_groups, reference=fit)
        booster = lightgbm.train(params, fit, num_boost_round=2000, valid_sets=[val],
                                 callbacks=[lightgbm.early_stopping(100, verbose=False)])  # fmt: skip

        def ndcg(i: int, x: np.ndarray, model: Any) -> float:
            predictions = model.predict(x, num_iteration=model.best_iteration)
            return ranking_metrics(labels[i], predictions, users[i], k=K)[f"ndcg@{K}"]

        val_score = ndcg(1, x_val, booster)
        if best is None or val_score > best["val"]:
            best = {"val": val_score, "test": ndcg(2, x_test, booster), "rounds": booster.best_iteration,
                    "categorical": as_categories}  # fmt: skip
    assert best is not None  # two candidates ran
    return {**best, "seconds": time.perf_counter() - began}


def mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {spread:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", choices=["select", "folds"], default="folds")
    parser.add_argument("--tables", nargs="+", default=list(FOLDS), choices=[*FOLDS, *CLICK_TABLES])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--candidates", nargs="+", default=["pointwise", "auto"],
                        help="pointwise, a ranking loss (auto: the default), or loss:key=value,key=value")  # fmt: skip
    parser.add_argument("--no-lightgbm", action="store_true")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", type=Path, default=None, help="write (and resume from) the results here")
    args = parser.parse_args()
    source = load_movielens_source("movielens-100k", data_dir=args.data_dir)
    done: dict[str, Any] = json.loads(args.json.read_text()) if args.json and args.json.exists() else {}
    test = args.stage == "folds"
    models = [*args.candidates, *([] if args.no_lightgbm or not test else ["lightgbm lambdarank"])]
    for name in args.tables:
        for seed in args.seeds:
            table = ranking_table(name, seed, source)
            for model in models:
                key = f"{model}/{name}/{seed}"
                if key not in done:
                    if model == "lightgbm lambdarank":
                        done[key] = run_lambdarank(table, seed, load_config(RECIPE))
                    else:
                        done[key] = run_dcnrank(table, seed, model, test)
                    if args.json:
                        args.json.write_text(json.dumps(done, indent=1))
                print(key, json.dumps(done[key]), flush=True)
    print(f"\nNDCG@{K} by user, seeds {' '.join(map(str, args.seeds))}: mean ± std over seeds")
    groups = [[t] for t in args.tables if t not in FOLDS] + ([[t for t in args.tables if t in FOLDS]] * any(
        t in FOLDS for t in args.tables))  # the folds together: each seed's mean over them
    for names in groups:
        print(f"\n{' '.join(names)}\n{'model':<40} {'validation':>18} {'test':>18} {'seconds':>8}")
        for model in models:
            runs = [[done[f"{model}/{n}/{s}"] for n in names] for s in args.seeds]
            if any(r is None for seed in runs for r in seed):
                continue
            val = mean_std([statistics.mean(r["val"] for r in seed) for seed in runs])
            shown = mean_std([statistics.mean(r["test"] for r in seed) for seed in runs]) if test else "-"
            seconds = statistics.mean(r["seconds"] for seed in runs for r in seed)
            print(f"{model:<40} {val:>18} {shown:>18} {seconds:>8.1f}")


if __name__ == "__main__":
    main()
