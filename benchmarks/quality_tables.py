"""The tables dcnrank's defaults are chosen and checked on, and the baselines beside them.

Five kinds of table, each drawn afresh for a seed (a different split or sample, and the
runs' `train.seed` and `data.seed`):

- ``movielens-ratings``: MovieLens 100K, a random 80/20 split of its ratings (regression);
- ``movielens-clicks``: the same rows, labelled 1 where the rating is at least 4 (binary);
- ``criteo-like``: 40,000 training and 20,000 test impressions of
  `examples/make_criteo_like.py` (13 counts, 26 hashed categories, four planted crosses);
- ``collab-clicks``: a click log with known structure, 60,000 training rows: user and item
  biases, a rank-8 user × item affinity, a device × category effect and a position decay;
- ``threshold-clicks``: a click log a tree suits, 40,000 training rows: step functions of
  numeric columns, a numeric × category switch and a mid-cardinality category.

The baselines a practitioner tries first, fitted on the same fit rows and choosing by the
same validation rows dcnrank holds out (`data.validation`, `data.validation_fraction`,
`data.seed` of the dcnrank configuration): LightGBM on the categorical codes (an optional
extra, `pip install lightgbm`; as categorical features and as ordinal codes, the better on
validation, early stopping on validation), a logistic (ridge, for ratings) regression on
one-hot features (its C chosen on validation), and for ratings Surprise's SVD++ (optional).
"""

from __future__ import annotations

import importlib.util
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from dcnrank.bundle import load
from dcnrank.config import TrainRunConfig
from dcnrank.data.holdout import validation_split
from dcnrank.data.sources import load_movielens_source
from dcnrank.data.spec.feature_spec import (
    CategoricalColumn,
    FeatureSpec,
    MultiHotColumn,
    NumericColumn,
    load_feature_spec,
)
from dcnrank.metrics.classification import auc, logloss
from dcnrank.metrics.regression import rmse
from dcnrank.workflows.evaluate import evaluate_table
from dcnrank.workflows.train import train_table

ROOT = Path(__file__).resolve().parent.parent
TABLES = ("movielens-ratings", "movielens-clicks", "criteo-like", "collab-clicks", "threshold-clicks")


@dataclass(frozen=True)
class QualityTable:
    """One drawn table: its spec, training rows (dcnrank holds out validation among them), test rows."""

    name: str
    spec: FeatureSpec
    train: pa.Table
    test: pa.Table

    @property
    def task(self) -> str:
        return self.spec.task

    @property
    def metric(self) -> str:
        """The headline metric: AUC (higher is better) for clicks, RMSE (lower) for ratings."""
        return "auc" if self.task == "binary" else "rmse"


def make_table(name: str, seed: int, data_dir: str | None = None) -> QualityTable:
    """Table `name` of :data:`TABLES`, drawn for `seed`."""
    makers: dict[str, Callable[[int, str | None], QualityTable]] = {
        "movielens-ratings": _movielens_ratings,
        "movielens-clicks": _movielens_clicks,
        "criteo-like": _criteo_like,
        "collab-clicks": _collab_clicks,
        "threshold-clicks": _threshold_clicks,
    }
    if name not in makers:
        raise ValueError(f"`table` must be one of {', '.join(TABLES)}. Received: {name!r}")
    return makers[name](seed, data_dir)


def _movielens_ratings(seed: int, data_dir: str | None) -> QualityTable:
    source = load_movielens_source("movielens-100k", data_dir=data_dir)
    train_rows, test_rows = source.split_rows("random", seed)
    return QualityTable("movielens-ratings", source.spec, source.table.take(train_rows), source.table.take(test_rows))


def _movielens_clicks(seed: int, data_dir: str | None) -> QualityTable:
    ratings = _movielens_ratings(seed, data_dir)

    def clicks(table: pa.Table) -> pa.Table:
        click = pc.cast(pc.greater_equal(table.column("rating"), 4.0), pa.int64())
        return table.drop_columns(["rating"]).append_column("click", click)

    spec = replace(ratings.spec, label="click", task="binary")
    return QualityTable("movielens-clicks", spec, clicks(ratings.train), clicks(ratings.test))


def _criteo_like(seed: int, data_dir: str | None) -> QualityTable:
    path = ROOT / "examples" / "make_criteo_like.py"
    module_spec = importlib.util.spec_from_file_location("make_criteo_like", path)
    if module_spec is None or module_spec.loader is None:
        raise FileNotFoundError(path)
    generator = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(generator)
    world = generator.make_world(0)  # one world; the seed draws its impressions
    rng = np.random.default_rng(1000 + seed)
    train, _, calibration = generator.make_table(40_000, world, rng)
    test, _, _ = generator.make_table(20_000, world, rng, calibration)
    return QualityTable("criteo-like", load_feature_spec(ROOT / "examples" / "criteo_like.toml"), train, test)


def _zipf(rng: np.random.Generator, n: int, size: int, exponent: float = 0.9) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return rng.permutation(n)[rng.choice(n, size=size, p=weights / weights.sum())]


def _shifted_labels(rng: np.random.Generator, logit: np.ndarray, ctr: float) -> np.ndarray:
    """Bernoulli labels of `logit` shifted so that the mean click-through rate is `ctr`."""
    low, high = -20.0, 20.0
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if (1 / (1 + np.exp(-(logit + middle)))).mean() < ctr else (low, middle)
    return (rng.random(len(logit)) < 1 / (1 + np.exp(-(logit + low)))).astype(np.int64)


def _collab_clicks(seed: int, data_dir: str | None) -> QualityTable:
    world = np.random.default_rng(7)  # the structure is fixed; the seed draws the impressions
    users, items, rank = 4000, 2000, 8
    user_bias, item_bias = world.normal(0, 0.5, users), world.normal(0, 0.5, items)
    user_factors, item_factors = world.normal(0, 0.45, (users, rank)), world.normal(0, 0.45, (items, rank))
    category, segment = world.integers(0, 30, items), world.integers(0, 8, users)
    device_category = world.normal(0, 0.5, (3, 30))
    hour_effect = 0.3 * np.sin(np.arange(24) / 24 * 2 * np.pi)
    rng = np.random.default_rng(2000 + seed)
    n = 80_000
    user, item = _zipf(rng, users, n), _zipf(rng, items, n)
    device, hour, position = rng.integers(0, 3, n), rng.integers(0, 24, n), rng.integers(1, 11, n)
    logit = (
        user_bias[user] + item_bias[item] + 1.5 * np.einsum("nk,nk->n", user_factors[user], item_factors[item])
        + device_category[device, category[item]] + hour_effect[hour] - 0.15 * position
    )  # fmt: skip
    label = _shifted_labels(rng, logit, 0.2)
    table = pa.table({
        "user_id": pa.array([f"u{u}" for u in user]),
        "item_id": pa.array([f"i{i}" for i in item]),
        "segment": pa.array(segment[user]),
        "category": pa.array(category[item]),
        "device": pa.array(np.array(["ios", "android", "web"])[device]),
        "hour": pa.array(hour),
        "position": pa.array(position.astype(np.float64)),
        "click": pa.array(label),
    })  # fmt: skip
    spec = FeatureSpec(
        (
            CategoricalColumn("user_id"), CategoricalColumn("item_id"), CategoricalColumn("segment"),
            CategoricalColumn("category"), CategoricalColumn("device"), CategoricalColumn("hour"),
            NumericColumn("position"),
        ),
        label="click", task="binary", user="user_id", item="item_id",
        user_columns=("segment",), item_columns=("category",),
    )  # fmt: skip
    return QualityTable("collab-clicks", spec, table.slice(0, 60_000), table.slice(60_000))


def _threshold_clicks(seed: int, data_dir: str | None) -> QualityTable:
    world = np.random.default_rng(11)
    site_effect = world.normal(0, 0.6, 300)
    rng = np.random.default_rng(3000 + seed)
    n = 60_000
    price, distance, age = rng.lognormal(3.0, 1.0, n), rng.exponential(5.0, n), rng.integers(18, 80, n)
    rating = np.round(rng.uniform(1, 5, n), 1)
    channel, site, weekday = rng.integers(0, 6, n), _zipf(rng, 300, n, 1.0), rng.integers(0, 7, n)
    logit = (
        1.2 * (price < 15) - 0.9 * (distance > 8) + 0.8 * ((age > 45) & (channel == 2))
        + np.where(channel < 3, 0.6, -0.6) * (rating > 3.5) + site_effect[site] + 0.3 * (weekday >= 5)
    )  # fmt: skip
    label = _shifted_labels(rng, logit, 0.3)
    missing = rng.random(n) < 0.1
    table = pa.table({
        "price": pa.array(price), "distance": pa.array(distance, mask=missing), "age": pa.array(age),
        "rating": pa.array(rating), "channel": pa.array(channel), "site": pa.array([f"s{s}" for s in site]),
        "weekday": pa.array(weekday), "label": pa.array(label),
    })  # fmt: skip
    spec = FeatureSpec(
        (
            NumericColumn("price", log1p=True), NumericColumn("distance", log1p=True), NumericColumn("age"),
            NumericColumn("rating"), CategoricalColumn("channel"), CategoricalColumn("site"),
            CategoricalColumn("weekday"),
        ),
        label="label", task="binary",
    )  # fmt: skip
    return QualityTable("threshold-clicks", spec, table.slice(0, 40_000), table.slice(40_000))


def split_fit_validation(table: QualityTable, config: TrainRunConfig) -> tuple[np.ndarray, np.ndarray]:
    """The fit and validation rows of `table.train` that dcnrank holds out under `config`."""
    fit, val = validation_split(
        table.train.num_rows, config.data.validation_fraction, config.data.validation, config.data.seed
    )
    return fit.numpy(), val.numpy()


def train_dcnrank(table: QualityTable, config: TrainRunConfig) -> dict[str, Any]:
    """`dcnrank train` on the training rows with `config`, then the bundle scored on the test rows
    once: the validation and test metrics, best epoch and seconds. Nothing chooses by the test rows."""
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dcnrank-quality-") as folder:
        result = train_table(config, table.spec, table.train, Path(folder) / "bundle", dataset={"table": table.name})
        seconds = time.perf_counter() - began
        test = evaluate_table(load(result.bundle_path), table.test, source=f"{table.name} test rows")
    validation = result.metrics["validation"]
    scores = {"best_epoch": validation["best_epoch"], "seconds": seconds}
    for key in ("auc", "logloss", "rmse"):
        if key in validation:
            scores[f"val_{key}"], scores[f"test_{key}"] = validation[key], test[key]
    return scores


# ---- the baselines ------------------------------------------------------------------------


def _features(
    spec: FeatureSpec, train: pa.Table, tables: list[pa.Table]
) -> tuple[list[np.ndarray], list[str], list[str]]:
    """Each table as a float matrix: categorical codes (vocabulary of `train`, NaN unknown or
    missing), one 0/1 column per multi-hot value, numeric values (NaN missing); the feature
    names; their kinds (`categorical`, `indicator`, `numeric`, `log-numeric`)."""
    columns: list[list[np.ndarray]] = [[] for _ in tables]
    names: list[str] = []
    kinds: list[str] = []
    for column in spec.columns:
        if isinstance(column, CategoricalColumn):
            values = [str(v) for v in train.column(column.name).to_pylist() if v is not None]
            vocabulary = {v: i for i, v in enumerate(dict.fromkeys(values))}
            for out, table in zip(columns, tables, strict=True):
                raw = table.column(column.name).to_pylist()
                out.append(np.array([vocabulary.get(str(v), math.nan) if v is not None else math.nan for v in raw]))
            names.append(column.name)
            kinds.append("categorical")
        elif isinstance(column, MultiHotColumn):
            values = sorted({v for row in train.column(column.name).to_pylist() for v in (row or [])})
            for out, table in zip(columns, tables, strict=True):
                rows = [set(row or []) for row in table.column(column.name).to_pylist()]
                out.extend(np.array([float(v in row) for row in rows]) for v in values)
            names += [f"{column.name}={v}" for v in values]
            kinds += ["indicator"] * len(values)
        elif isinstance(column, NumericColumn):
            for out, table in zip(columns, tables, strict=True):
                raw = table.column(column.name).to_pylist()
                out.append(np.array([math.nan if v is None else float(v) for v in raw]))
            names.append(column.name)
            kinds.append("log-numeric" if column.log1p else "numeric")
    return [np.stack(c, axis=1) for c in columns], names, kinds


def _labels(spec: FeatureSpec, table: pa.Table) -> np.ndarray:
    return table.column(spec.label).to_numpy().astype(np.float64)


def _score(task: str, labels: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    if task == "binary":
        clipped = np.clip(predictions, 1e-7, 1 - 1e-7)
        return {"auc": auc(labels, predictions), "logloss": logloss(labels, clipped)}
    return {"rmse": rmse(torch.from_numpy(predictions), torch.from_numpy(labels))}


def _better(task: str, a: dict[str, float], b: dict[str, float] | None) -> bool:
    if b is None:
        return True
    return a["auc"] > b["auc"] if task == "binary" else a["rmse"] < b["rmse"]


def lightgbm_baseline(table: QualityTable, config: TrainRunConfig) -> dict[str, Any] | None:
    """LightGBM on the categorical codes, early stopping on dcnrank's validation rows (None without
    lightgbm). Codes as categorical features and as ordinal values are both tried; the better on
    validation is kept."""
    try:
        import lightgbm
    except ImportError:
        return None
    began = time.perf_counter()
    fit_rows, val_rows = split_fit_validation(table, config)
    fit_table, val_table = table.train.take(fit_rows), table.train.take(val_rows)
    (x_fit, x_val, x_test), names, kinds = _features(table.spec, fit_table, [fit_table, val_table, table.test])
    y_fit, y_val, y_test = (_labels(table.spec, t) for t in (fit_table, val_table, table.test))
    best: dict[str, Any] | None = None
    for as_categories in (True, False):
        params = {
            "objective": "binary" if table.task == "binary" else "regression",
            "learning_rate": 0.05, "num_leaves": 31, "min_data_in_leaf": 20, "feature_fraction": 0.9,
            "bagging_fraction": 0.9, "bagging_freq": 1, "seed": config.data.seed, "verbose": -1, "num_threads": 1,
            "cat_smooth": 10, "max_cat_to_onehot": 8,
        }  # fmt: skip
        which = [n for n, k in zip(names, kinds, strict=True) if k == "categorical"] if as_categories else []
        fit = lightgbm.Dataset(x_fit, y_fit, feature_name=names, categorical_feature=which, free_raw_data=False)
        val = lightgbm.Dataset(x_val, y_val, reference=fit)
        booster = lightgbm.train(
            params, fit, num_boost_round=3000, valid_sets=[val],
            callbacks=[lightgbm.early_stopping(100, verbose=False)],
        )  # fmt: skip
        val_scores = _score(table.task, y_val, booster.predict(x_val, num_iteration=booster.best_iteration))
        if _better(table.task, val_scores, best and best["val"]):
            test_scores = _score(table.task, y_test, booster.predict(x_test, num_iteration=booster.best_iteration))
            best = {"val": val_scores, "test": test_scores, "rounds": booster.best_iteration,
                    "categorical": as_categories}  # fmt: skip
    assert best is not None  # two candidates ran
    return _flat(best, time.perf_counter() - began)


def linear_baseline(table: QualityTable, config: TrainRunConfig) -> dict[str, Any]:
    """Logistic regression (binary) or ridge regression (ratings) on one-hot categories, the multi-hot
    indicators and standardised numeric values (log1p where the spec says, missing as 0 plus an
    indicator); the regularisation strength is chosen on dcnrank's validation rows."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.preprocessing import OneHotEncoder

    began = time.perf_counter()
    fit_rows, val_rows = split_fit_validation(table, config)
    fit_table, val_table = table.train.take(fit_rows), table.train.take(val_rows)
    matrices, _, kinds = _features(table.spec, fit_table, [fit_table, val_table, table.test])
    is_categorical = np.array([k == "categorical" for k in kinds])
    logged = np.array([k == "log-numeric" for k in kinds])[~is_categorical]
    encoder = OneHotEncoder(handle_unknown="ignore")
    encoder.fit(np.nan_to_num(matrices[0][:, is_categorical], nan=-1.0))

    def numeric(matrix: np.ndarray) -> np.ndarray:
        block = matrix[:, ~is_categorical]
        return np.where(logged, np.sign(block) * np.log1p(np.abs(block)), block)

    reference = numeric(matrices[0])
    mean, std = np.nanmean(reference, axis=0), np.nanstd(reference, axis=0) + 1e-9
    has_missing = np.isnan(reference).any(axis=0)

    def design(matrix: np.ndarray) -> Any:
        block = (numeric(matrix) - mean) / std
        missing = np.isnan(block)[:, has_missing].astype(np.float64)
        dense = np.concatenate([np.nan_to_num(block), missing], axis=1)
        return sparse.hstack([encoder.transform(np.nan_to_num(matrix[:, is_categorical], nan=-1.0)), dense]).tocsr()

    x_fit, x_val, x_test = (design(m) for m in matrices)
    y_fit, y_val, y_test = (_labels(table.spec, t) for t in (fit_table, val_table, table.test))
    best: dict[str, Any] | None = None
    for strength in (0.01, 0.03, 0.1, 0.3, 1.0):
        if table.task == "binary":
            model = LogisticRegression(C=strength, max_iter=2000).fit(x_fit, y_fit)
            predict = lambda x, m=model: m.predict_proba(x)[:, 1]  # noqa: E731
        else:
            model = Ridge(alpha=1.0 / strength).fit(x_fit, y_fit)
            predict = lambda x, m=model: m.predict(x)  # noqa: E731
        val_scores = _score(table.task, y_val, predict(x_val))
        if _better(table.task, val_scores, best and best["val"]):
            best = {"val": val_scores, "test": _score(table.task, y_test, predict(x_test)), "C": strength}
    assert best is not None
    return _flat(best, time.perf_counter() - began)


def svdpp_baseline(table: QualityTable, config: TrainRunConfig) -> dict[str, Any] | None:
    """Surprise's SVD++ (defaults, seeded) on a ratings table's training rows (None without
    scikit-surprise, or for a click table). It does not hold out validation rows."""
    if table.task != "regression":
        return None
    try:
        import surprise
    except ImportError:
        return None
    began = time.perf_counter()
    spec = table.spec

    def raw(t: pa.Table) -> list[tuple[str, str, float, None]]:
        columns = (t.column(spec.user).to_pylist(), t.column(spec.item).to_pylist(), t.column(spec.label).to_pylist())
        return [(str(u), str(i), float(r), None) for u, i, r in zip(*columns, strict=True)]

    data = surprise.Dataset.load_from_folds([], surprise.Reader(rating_scale=(1, 5)))
    algorithm = surprise.SVDpp(random_state=config.data.seed)
    algorithm.fit(data.construct_trainset(raw(table.train)))
    predictions = algorithm.test(data.construct_testset(raw(table.test)))
    return {"test_rmse": surprise.accuracy.rmse(predictions, verbose=False), "seconds": time.perf_counter() - began}


def _flat(best: dict[str, Any], seconds: float) -> dict[str, Any]:
    flat = {f"val_{k}": v for k, v in best.pop("val").items()}
    flat.update({f"test_{k}": v for k, v in best.pop("test").items()})
    return {**flat, **best, "seconds": seconds}


# ---- running many (table, seed, model) jobs -------------------------------------------------

BASELINES = {"lightgbm": lightgbm_baseline, "linear": linear_baseline, "svd++": svdpp_baseline}


@dataclass(frozen=True)
class Job:
    """One run: `model` is a baseline's name (:data:`BASELINES`) or a dcnrank candidate's, whose
    configuration is `config_file` with `overrides`."""

    table: str
    seed: int
    model: str
    config_file: str
    overrides: tuple[str, ...] = ()
    data_dir: str | None = None
    threads: int = 1

    @property
    def key(self) -> str:
        return f"{self.table}|{self.seed}|{self.model}"


def run_job(job: Job) -> dict[str, Any] | None:
    """The scores of one job, on `job.threads` threads."""
    from dcnrank.config import load_config

    torch.set_num_threads(job.threads)
    seeds = [f"train.seed={job.seed}", f"data.seed={job.seed}"]
    config = load_config(job.config_file, [*job.overrides, *seeds])
    table = make_table(job.table, job.seed, job.data_dir)
    if job.model in BASELINES:
        return BASELINES[job.model](table, config)
    return train_dcnrank(table, config)


def run_jobs(jobs: list[Job], workers: int, done: dict[str, Any], save: Callable[[dict[str, Any]], None]) -> None:
    """Run the jobs not yet in `done` (by key) on `workers` processes, saving after each one, so an
    interrupted search resumes where it stopped."""
    import multiprocessing

    threads = max(1, (os.cpu_count() or 1) // workers)  # the runs side by side share the cores
    todo = [replace(job, threads=threads) for job in jobs if job.key not in done]
    if not todo:
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, maxtasksperchild=1) as pool:
        failed = []
        for key, scores, error in pool.imap_unordered(_keyed, todo):
            if error is not None:  # reported, not saved: a rerun tries it again
                failed.append(key)
                print(f"  {key}: FAILED\n{error}", flush=True)
                continue
            done[key] = scores
            save(done)
            print(f"  {key}: {_summary(scores)}", flush=True)
    if failed:
        raise RuntimeError(f"{len(failed)} runs failed (their tracebacks are above): {', '.join(failed)}")


def _keyed(job: Job) -> tuple[str, dict[str, Any] | None, str | None]:
    try:
        return job.key, run_job(job), None
    except Exception:  # one broken run must not stop the others
        import traceback

        return job.key, None, traceback.format_exc()


def _summary(scores: dict[str, Any] | None) -> str:
    if scores is None:
        return "skipped (not installed, or not for this task)"
    return ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in scores.items())
