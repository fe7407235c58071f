"""How configs/movielens_100k.toml was chosen: a coordinate search on validation RMSE only,
then the chosen recipe and one-lever-off ablations on GroupLens' folds u1…u5.

Every candidate trains through the pipeline `dcnrank train --split FOLD` runs (the MovieLens
100K source's rows as a table, `train_table`, a table bundle; `bench_quality.train_fold`).
Selection reads nothing but validation slices carved (seeded, at random) from each fold's
training rows; test RMSEs (the saved bundle's predictions of the fold's test rows) are
recorded beside them for the report, never used to choose.

    python benchmarks/recipe_search.py --device cuda --workers 10 --out recipe_search.json

`--stage NAME --base FILE` instead evaluates one named set of changes (`STAGES`) to a
config (a TOML run config or a search's JSON) on every fold and ranks them by mean
validation RMSE. `--workers 1` trains in this process, one model at a time
(docs/recipe.md lists the stages run for the current recipe):

    nice -n 19 env OMP_NUM_THREADS=1 python benchmarks/recipe_search.py --workers 1 \
        --stage ablation --base configs/movielens_100k.toml --out ablation.json
"""

from __future__ import annotations

import argparse
import json
import tomllib
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

FOLDS = ("u1", "u2", "u3", "u4", "u5")

# the levers every candidate starts from (they are the axes searched below)
BASE: dict[str, Any] = {
    "model.use_bias_terms": True,
    "model.clip_output": True,
    "model.embedding_dim": 32,
    "model.dropout": 0.2,
    "model.structure": "stacked",
    "model.num_cross_layers": 1,
    "model.deep_units": [192, 192],
    "train.learning_rate": 0.001,
    "train.weight_decay": 0.1,
    "train.batch_size": 256,
    "train.epochs": 60,
    "train.shuffle": True,
    "data.validation": "random",
    "data.patience": 4,
}

_CACHE: dict[str, Any] = {}


def _overrides(settings: dict[str, Any]) -> list[str]:
    return [f"{k}={json.dumps(v) if not isinstance(v, bool) else str(v).lower()}" for k, v in settings.items()]


def run_one(settings: dict[str, Any], split: str, device: str, data_dir: str | None) -> dict[str, Any]:
    """Train one candidate on one fold as `dcnrank train --split FOLD` does
    (`bench_quality.train_fold`); its validation and test RMSE, best epoch and seconds."""
    import torch

    torch.set_num_threads(1)
    from bench_quality import DATASET, train_fold

    from dcnrank.config import load_config
    from dcnrank.data.sources import load_movielens_source

    if "source" not in _CACHE:
        _CACHE["source"] = load_movielens_source(DATASET, data_dir=data_dir)
    config = load_config(overrides=[*_overrides(settings), f"data.split={split}"])
    # the test rows are scored once, after training; never used to choose
    return {"settings": settings, "split": split, **train_fold(config, _CACHE["source"], split, device)}


def seed_protocol(split: str, device: str, data_dir: str | None) -> dict[str, Any]:
    """The seed's protocol (lr 0.01, 10 epochs, batch 1024, no validation) on one fold."""
    from dcnrank.experiments.movielens import run_movielens

    result = run_movielens(data_dir=data_dir, trials=1, split=split, models=("cross",), device=device)
    model = result.models["cross"]
    return {"split": split, "test_rmse": model.rmse[0], "seconds": model.seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default="recipe_search.json")
    parser.add_argument("--search-fold", default="u1", help="fold whose validation slice the search reads")
    parser.add_argument("--quick", action="store_true", help="a smoke test: tiny grids, 2 epochs")
    parser.add_argument(
        "--refine", default=None, metavar="SEARCH.json",
        help="instead: start from the recipe a previous search wrote and compare single changes "
        "on every fold by mean validation RMSE",
    )  # fmt: skip
    parser.add_argument("--stage", default=None, choices=sorted(STAGES), help="evaluate one named set of changes")
    parser.add_argument("--base", default=None, metavar="FILE", help="--stage's starting config: .toml or .json")
    parser.add_argument("--folds", nargs="+", default=list(FOLDS), choices=FOLDS, help="--stage's folds")
    args = parser.parse_args()
    log: dict[str, Any] = {"stages": [], "args": vars(args)}
    pool = ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) if args.workers > 1 else None

    def evaluate(candidates: list[dict[str, Any]], folds: tuple[str, ...]) -> list[dict[str, Any]]:
        if pool is None:  # one model at a time in this process, for a shared machine
            return [run_one(c, f, args.device, args.data_dir) for c in candidates for f in folds]
        jobs = [pool.submit(run_one, c, f, args.device, args.data_dir) for c in candidates for f in folds]
        return [j.result() for j in jobs]

    def save() -> None:
        with open(args.out, "w") as stream:
            json.dump(log, stream, indent=1)

    if args.refine:
        refine(args, evaluate, log, save)
        return
    if args.stage:
        stage(args, evaluate, log, save)
        return
    base = dict(BASE)
    if args.quick:
        base.update({"train.epochs": 2})
    axes: list[dict[str, list[Any]]] = [
        {"train.learning_rate": [0.0005, 0.001, 0.002, 0.005], "train.weight_decay": [0.02, 0.1, 0.3, 1.0]},
        {"model.dropout": [0.0, 0.2, 0.4], "model.embedding_dim": [16, 32, 64]},
        {"model.structure": ["stacked", "parallel"], "model.num_cross_layers": [1, 2, 3]},
        {"train.batch_size": [128, 256, 1024]},
    ]
    if args.quick:
        axes = [{"train.learning_rate": [0.001, 0.002]}]
    for axis in axes:
        keys = list(axis)
        grid = [{}]
        for key in keys:
            grid = [{**g, key: v} for g in grid for v in axis[key]]
        candidates = [{**base, **g} for g in grid]
        results = evaluate(candidates, (args.search_fold,))
        best = min(results, key=lambda r: r["val_rmse"])
        base = dict(best["settings"])
        log["stages"].append({"axis": keys, "results": results, "chosen": {k: base[k] for k in keys}})
        print(f"stage {keys}: chose {[base[k] for k in keys]} val {best['val_rmse']:.4f}", flush=True)
        save()
    log["recipe"] = base
    ablations = {
        "recipe": {},
        "no bias terms": {"model.use_bias_terms": False},
        "no clipping": {"model.clip_output": False},
        "no dropout": {"model.dropout": 0.0},
        "seed weight decay 0.004": {"train.weight_decay": 0.004},
        "seed lr 0.01": {"train.learning_rate": 0.01},
        "low rank r=16": {"model.projection_dim": 16},
    }
    if args.quick:
        ablations = {"recipe": {}, "no bias terms": {"model.use_bias_terms": False}}
    folds = FOLDS if not args.quick else ("u1",)
    names = list(ablations)
    results = evaluate([{**base, **ablations[n]} for n in names], folds)
    seed_jobs = [pool.submit(seed_protocol, f, args.device, args.data_dir) for f in folds]
    log["ablation"] = {n: [r for r in results if r["settings"] == {**base, **ablations[n]}] for n in names}
    log["seed_protocol"] = [j.result() for j in seed_jobs]
    save()
    for n in names:
        rows = log["ablation"][n]
        tests = [r["test_rmse"] for r in rows]
        vals = [r["val_rmse"] for r in rows]
        mean_val, mean_test = sum(vals) / len(vals), sum(tests) / len(tests)
        print(f"{n:28s} val {mean_val:.4f} test {mean_test:.4f} {[round(t, 4) for t in tests]}")
    seed = [r["test_rmse"] for r in log["seed_protocol"]]
    print(f"{'seed protocol':28s} test {sum(seed) / len(seed):.4f} {[round(t, 4) for t in seed]}")
    print("recipe:", json.dumps(base))


REFINEMENTS: dict[str, dict[str, Any]] = {
    "recipe": {},
    "dropout 0": {"model.dropout": 0.0},
    "low rank r=16": {"model.projection_dim": 16},
    "dropout 0, low rank r=16": {"model.dropout": 0.0, "model.projection_dim": 16},
    "weight decay 0.005": {"train.weight_decay": 0.005},
    "lr 0.003": {"train.learning_rate": 0.003},
    "embedding 64, dropout 0.3": {"model.embedding_dim": 64, "model.dropout": 0.3},
    "deep [256, 128]": {"model.deep_units": [256, 128]},
    "validation 5%": {"data.validation_fraction": 0.05},
    "patience 6": {"data.patience": 6},
    "batch 512": {"train.batch_size": 512},
    "2 cross layers, low rank r=16": {"model.num_cross_layers": 2, "model.projection_dim": 16},
}


def refine(args: argparse.Namespace, evaluate: Any, log: dict[str, Any], save: Any) -> None:
    """Single changes to a searched recipe, on every fold; the lowest mean validation RMSE wins."""
    with open(args.refine) as stream:
        base = json.load(stream)["recipe"]
    names = list(REFINEMENTS)
    results = evaluate([{**base, **REFINEMENTS[n]} for n in names], FOLDS)
    log["refine"] = {n: [r for r in results if r["settings"] == {**base, **REFINEMENTS[n]}] for n in names}
    means = {}
    for n in names:
        rows = log["refine"][n]
        val = sum(r["val_rmse"] for r in rows) / len(rows)
        test = sum(r["test_rmse"] for r in rows) / len(rows)
        means[n] = val
        print(f"{n:32s} val {val:.4f} test {test:.4f} {[round(r['test_rmse'], 4) for r in rows]}", flush=True)
    chosen = min(means, key=means.__getitem__)
    log["recipe"] = {**base, **REFINEMENTS[chosen]}
    print("chosen:", chosen, json.dumps(log["recipe"]))
    save()


def base_settings(path: str) -> dict[str, Any]:
    """The flat `section.key` settings of a TOML run config, or the `recipe` of a search's JSON."""
    if path.endswith(".json"):
        with open(path) as stream:
            return dict(json.load(stream)["recipe"])
    with open(path, "rb") as stream:
        raw = tomllib.load(stream)
    return {f"{section}.{key}": value for section, table in raw.items() for key, value in table.items()
            if f"{section}.{key}" not in ("data.split", "data.data_dir")}  # fmt: skip


HISTORIES: dict[str, Any] = {"model.user_history": True, "model.item_history": True}
# Named sets of changes for `--stage` (after issue 6's first recipe reached 0.9214 on test).
STAGES: dict[str, dict[str, dict[str, Any]]] = {
    # SVD++-style implicit feedback: which items the user rated / which users rated the item
    "history": {
        "recipe": {},
        "user history": {"model.user_history": True},
        "item history": {"model.item_history": True},
        "user and item history": {"model.user_history": True, "model.item_history": True},
    },
    # retuning with both histories on (the "history" stage's choice)
    "tune": {
        "histories": HISTORIES,
        "lr 0.003": {**HISTORIES, "train.learning_rate": 0.003},
        "lr 0.002": {**HISTORIES, "train.learning_rate": 0.002},
        "weight decay 0.05": {**HISTORIES, "train.weight_decay": 0.05},
        "weight decay 0.1": {**HISTORIES, "train.weight_decay": 0.1},
        "dropout 0.3": {**HISTORIES, "model.dropout": 0.3},
        "embedding 64": {**HISTORIES, "model.embedding_dim": 64},
        "embedding 16": {**HISTORIES, "model.embedding_dim": 16},
        "batch 512": {**HISTORIES, "train.batch_size": 512},
    },
    # second round, from "tune"'s choice (histories, lr 0.002): --base its JSON
    "tune2": {
        "tuned": {},
        "lr 0.001": {"train.learning_rate": 0.001},
        "embedding 16": {"model.embedding_dim": 16},
        "batch 512": {"train.batch_size": 512},
        "dropout 0.1": {"model.dropout": 0.1},
        "weight decay 0.01": {"train.weight_decay": 0.01},
    },
    # one lever of the final recipe (configs/movielens_100k.toml) off at a time
    "ablation": {
        "recipe": {},
        "no user history": {"model.user_history": False},
        "no item history": {"model.item_history": False},
        "no histories": {"model.user_history": False, "model.item_history": False},
        "no bias terms": {"model.use_bias_terms": False},
        "no clipping": {"model.clip_output": False},
        "the seed's lr 0.01": {"train.learning_rate": 0.01},
    },
}


def stage(args: argparse.Namespace, evaluate: Any, log: dict[str, Any], save: Any) -> None:
    """The changes of `STAGES[args.stage]` to `--base`, on `--folds`; the lowest mean validation RMSE wins."""
    if args.base is None:
        raise SystemExit("--stage needs --base: the config the changes apply to")
    base = base_settings(args.base)
    changes = STAGES[args.stage]
    folds = tuple(args.folds)
    log["stage"] = {}
    means = {}
    for name, change in changes.items():
        rows = evaluate([{**base, **change}], folds)
        log["stage"][name] = rows
        val = sum(r["val_rmse"] for r in rows) / len(rows)
        test = sum(r["test_rmse"] for r in rows) / len(rows)
        seconds = sum(r["seconds"] for r in rows) / len(rows)
        means[name] = val
        print(
            f"{name:36s} val {val:.4f} test {test:.4f} {seconds:5.1f} s/fold "
            f"val {[round(r['val_rmse'], 4) for r in rows]} test {[round(r['test_rmse'], 4) for r in rows]}",
            flush=True,
        )
        save()
    chosen = min(means, key=means.__getitem__)
    log["recipe"] = {**base, **changes[chosen]}
    print("chosen (lowest mean validation RMSE):", chosen, json.dumps(log["recipe"]))
    save()


if __name__ == "__main__":
    main()
