"""Reference run of the Keras-RS DCN tutorial's protocol (Keras 3 + keras-rs, JAX on CPU).

The benchmark times this script and dcnrank side by side on the same arrays.
It reproduces the tutorial "Ranking with Deep and Cross Networks" as written:

- toy: a cross network (``FeatureCross()`` then ``Dense(1)``, 16 params) and a
  deep network (Dense 512/256/128 relu then ``Dense(1)``, 166,401 params);
  AdamW lr 0.01, batch 1024, 100 epochs, batches in a fixed order.
- movielens: one ``Embedding(vocabulary_size, 32)`` per feature, concatenated
  to 192 values, then a stacked DCN (``FeatureCross()`` then Dense 192, 192;
  221,953 params), a low-rank DCN (``FeatureCross(projection_dim=20)``;
  192,769 params) and a deep network (Dense 192, 192, 192; 221,953 params),
  each ending in ``Dense(1)``; AdamW lr 0.01, batch 1024, 10 epochs, N trials
  with a fresh model per trial.

The tutorial feeds an un-reshuffled ``tf.data`` pipeline; here numpy arrays go
straight to ``model.fit(..., shuffle=False)``, which gives the same fixed batch
order with no TensorFlow installed.

Input: one ``.npz`` (``--data``) with

    toy_train_x (n, 3) float32     toy_train_y (n,) or (n, 1)
    toy_test_x  (m, 3) float32     toy_test_y  (m,) or (m, 1)
    ml_train_x  (n, 6) int         ml_train_y  (n,) or (n, 1)
    ml_test_x   (m, 6) int         ml_test_y   (m,) or (m, 1)
    ml_vocabulary_sizes (6,) int   table sizes including the OOV index 0

The MovieLens columns are already vocabulary-encoded, in the tutorial's order:
movie_id, user_id, user_gender, bucketized_user_age, user_zip_code,
user_occupation_text. Only the arrays of the requested parts are needed.

Output: JSON (``--out``) with RMSE per trial, mean and std, parameter counts,
wall seconds per part and model, milliseconds per training step and peak RSS;
a short table on stdout.

Example:

    python benchmarks/keras_reference.py --data arrays.npz --out keras.json \
        --parts toy,movielens --trials 10
"""

from __future__ import annotations

import os

# Must precede the first keras import; JAX on CPU whatever else is installed.
os.environ["KERAS_BACKEND"] = "jax"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import jax  # noqa: E402
import keras  # noqa: E402
import keras_rs  # noqa: E402
import numpy as np  # noqa: E402

PARTS = ("toy", "movielens")

# The tutorial's TOY_CONFIG and MOVIELENS_CONFIG.
LEARNING_RATE = 0.01
BATCH_SIZE = 1024
MOVIELENS_FEATURES = (
    "movie_id",
    "user_id",
    "user_gender",
    "bucketized_user_age",
    "user_zip_code",
    "user_occupation_text",
)
EMBEDDING_DIM = 32
DCN_UNITS = (192, 192)
DEEP_UNITS = (192, 192, 192)
PROJECTION_DIM = 20
TOY_DEEP_UNITS = (512, 256, 128)

# Parameter counts the tutorial prints; a mismatch means the protocol drifted.
EXPECTED_PARAMS = {
    ("toy", "cross"): 16,
    ("toy", "deep"): 166_401,
    ("movielens", "cross"): 221_953,
    ("movielens", "cross_low_rank"): 192_769,
    ("movielens", "deep"): 221_953,
}


@dataclass(frozen=True)
class Split:
    """Train and test arrays of one part, ready for ``model.fit``."""

    train_x: Any
    train_y: np.ndarray
    test_x: Any
    test_y: np.ndarray

    @property
    def num_train(self) -> int:
        return int(self.train_y.shape[0])


class EpochClock(keras.callbacks.Callback):
    """Records ``time.perf_counter()`` at the end of every epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch_ends: list[float] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch_ends.append(time.perf_counter())


# --------------------------------------------------------------------------- models


def toy_cross_network() -> keras.Model:
    return keras.Sequential([keras_rs.layers.FeatureCross(), keras.layers.Dense(1)])


def toy_deep_network() -> keras.Model:
    layers = [keras.layers.Dense(units, activation="relu") for units in TOY_DEEP_UNITS]
    return keras.Sequential([*layers, keras.layers.Dense(1)])


def movielens_model(
    vocabulary_sizes: Sequence[int],
    dense_units: Sequence[int],
    use_cross_layer: bool = False,
    projection_dim: int | None = None,
) -> keras.Model:
    """The tutorial's ``get_model``: embeddings, optional cross layer, MLP, Dense(1).

    ``vocabulary_sizes`` already count the OOV index, i.e. they equal the
    tutorial's ``len(vocabulary) + 1``.
    """
    inputs = {}
    embeddings = []
    for name, size in zip(MOVIELENS_FEATURES, vocabulary_sizes, strict=True):
        inputs[name] = keras.Input(shape=(), dtype="int32", name=name)
        embedding = keras.layers.Embedding(input_dim=int(size), output_dim=EMBEDDING_DIM)
        embeddings.append(embedding(inputs[name]))
    x = keras.ops.concatenate(embeddings, axis=1)
    if use_cross_layer:
        x = keras_rs.layers.FeatureCross(projection_dim=projection_dim)(x)
    for units in dense_units:
        x = keras.layers.Dense(units, activation="relu")(x)
    x = keras.layers.Dense(1)(x)
    return keras.Model(inputs=inputs, outputs=x)


def movielens_builders(vocabulary_sizes: Sequence[int]) -> dict[str, Callable[[], keras.Model]]:
    return {
        "cross": lambda: movielens_model(vocabulary_sizes, DCN_UNITS, use_cross_layer=True),
        "cross_low_rank": lambda: movielens_model(
            vocabulary_sizes, DCN_UNITS, use_cross_layer=True, projection_dim=PROJECTION_DIM
        ),
        "deep": lambda: movielens_model(vocabulary_sizes, DEEP_UNITS),
    }


# ----------------------------------------------------------------------------- data


def _require(arrays: Any, key: str, path: str) -> np.ndarray:
    if key not in arrays.files:
        raise ValueError(
            f"`--data` must hold the array `{key}`. Received: {path} with {sorted(arrays.files)}"
        )
    return np.asarray(arrays[key])


def _labels(values: np.ndarray, rows: int, key: str) -> np.ndarray:
    if values.shape not in {(rows,), (rows, 1)}:
        raise ValueError(
            f"`{key}` must have shape ({rows},) or ({rows}, 1). Received: shape={values.shape}"
        )
    return values.reshape(rows, 1).astype("float32")


def _features(values: np.ndarray, columns: int, key: str) -> np.ndarray:
    if values.ndim != 2 or values.shape[1] != columns or values.shape[0] == 0:
        raise ValueError(
            f"`{key}` must have shape (rows, {columns}) with rows > 0. "
            f"Received: shape={values.shape}"
        )
    return values


def load_toy(arrays: Any, path: str) -> Split:
    splits = {}
    for split in ("train", "test"):
        x = _features(_require(arrays, f"toy_{split}_x", path), 3, f"toy_{split}_x")
        y = _labels(_require(arrays, f"toy_{split}_y", path), x.shape[0], f"toy_{split}_y")
        splits[split] = (x.astype("float32"), y)
    return Split(*splits["train"], *splits["test"])


def load_movielens(arrays: Any, path: str) -> tuple[Split, list[int]]:
    sizes = _require(arrays, "ml_vocabulary_sizes", path)
    if sizes.shape != (len(MOVIELENS_FEATURES),) or (sizes < 1).any():
        raise ValueError(
            f"`ml_vocabulary_sizes` must be {len(MOVIELENS_FEATURES)} positive ints. "
            f"Received: {sizes.tolist()}"
        )
    vocabulary_sizes = [int(s) for s in sizes]
    splits = {}
    for split in ("train", "test"):
        key = f"ml_{split}_x"
        x = _features(_require(arrays, key, path), len(MOVIELENS_FEATURES), key)
        if not np.issubdtype(x.dtype, np.integer):
            raise ValueError(f"`{key}` must hold integer indices. Received: dtype={x.dtype}")
        # JAX clamps out-of-range gathers instead of failing, so check here.
        bad = (x < 0) | (x >= np.asarray(vocabulary_sizes))
        if bad.any():
            row, column = (int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"`{key}` indices must lie in [0, ml_vocabulary_sizes). Received: "
                f"{key}[{row}, {column}]={int(x[row, column])} for size "
                f"{vocabulary_sizes[column]} ({MOVIELENS_FEATURES[column]})"
            )
        y = _labels(_require(arrays, f"ml_{split}_y", path), x.shape[0], f"ml_{split}_y")
        inputs = {
            name: np.ascontiguousarray(x[:, i], dtype="int32")
            for i, name in enumerate(MOVIELENS_FEATURES)
        }
        splits[split] = (inputs, y)
    return Split(*splits["train"], *splits["test"]), vocabulary_sizes


# -------------------------------------------------------------------------- protocol


def train_and_evaluate(build: Callable[[], keras.Model], split: Split, epochs: int) -> dict:
    """The tutorial's ``train_and_evaluate``, timed: fresh model, fit, evaluate."""
    start = time.perf_counter()
    model = build()
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=LEARNING_RATE),
        loss=keras.losses.MeanSquaredError(),
        metrics=[keras.metrics.RootMeanSquaredError()],
    )
    clock = EpochClock()
    fit_start = time.perf_counter()
    model.fit(
        split.train_x,
        split.train_y,
        batch_size=BATCH_SIZE,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=[clock],
    )
    fit_seconds = time.perf_counter() - fit_start
    results = model.evaluate(
        split.test_x, split.test_y, batch_size=BATCH_SIZE, return_dict=True, verbose=0
    )
    steps_per_epoch = math.ceil(split.num_train / BATCH_SIZE)
    first_epoch = clock.epoch_ends[0] - fit_start
    later_steps = steps_per_epoch * (epochs - 1)
    return {
        "rmse": float(results["root_mean_squared_error"]),
        "params": int(model.count_params()),
        "fit_seconds": fit_seconds,
        "first_epoch_seconds": first_epoch,
        "steps": steps_per_epoch * epochs,
        "ms_per_step": 1000.0 * fit_seconds / (steps_per_epoch * epochs),
        "ms_per_step_after_first_epoch": (
            1000.0 * (clock.epoch_ends[-1] - clock.epoch_ends[0]) / later_steps
            if later_steps
            else None
        ),
        "seconds": time.perf_counter() - start,
    }


def run_models(
    part: str,
    builders: dict[str, Callable[[], keras.Model]],
    split: Split,
    epochs: int,
    trials: int,
    seed: int,
) -> dict:
    """N trials of every model, interleaved per trial as the tutorial does."""
    runs: dict[str, list[dict]] = {name: [] for name in builders}
    part_start = time.perf_counter()
    for trial in range(trials):
        for name, build in builders.items():
            keras.utils.set_random_seed(seed + trial)
            runs[name].append(train_and_evaluate(build, split, epochs))
    models = {}
    for name, trial_runs in runs.items():
        params = trial_runs[0]["params"]
        expected = EXPECTED_PARAMS[(part, name)]
        if params != expected:
            raise RuntimeError(
                f"{part}/{name} has {params} parameters, the tutorial's has {expected}; "
                "the reference no longer matches the protocol"
            )
        rmse = [r["rmse"] for r in trial_runs]
        after_first = [r["ms_per_step_after_first_epoch"] for r in trial_runs]
        models[name] = {
            "rmse": rmse,
            "rmse_mean": float(np.mean(rmse)),
            "rmse_std": float(np.std(rmse)),
            "params": params,
            "epochs": epochs,
            "trials": trials,
            "steps_per_trial": trial_runs[0]["steps"],
            # Compile-inclusive: every trial builds a fresh model, so JAX re-traces.
            "ms_per_step": float(np.mean([r["ms_per_step"] for r in trial_runs])),
            "ms_per_step_after_first_epoch": (
                float(np.mean(after_first)) if after_first[0] is not None else None
            ),
            "first_epoch_seconds": float(np.mean([r["first_epoch_seconds"] for r in trial_runs])),
            "fit_seconds": float(sum(r["fit_seconds"] for r in trial_runs)),
            "seconds": float(sum(r["seconds"] for r in trial_runs)),
        }
    return {
        "seconds": time.perf_counter() - part_start,
        "epochs": epochs,
        "trials": trials,
        "num_train": split.num_train,
        "num_test": int(split.test_y.shape[0]),
        "models": models,
    }


def versions() -> dict[str, str]:
    import jaxlib

    return {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "keras_rs": keras_rs.__version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": np.__version__,
        "keras_backend": keras.backend.backend(),
        "jax_devices": ", ".join(str(d) for d in jax.devices()),
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB.

    Read from /proc/self/status (VmHWM) where it exists: `ru_maxrss` survives
    `exec`, so a process started by a big parent would report the parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    kilobytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kilobytes / 1024


def format_table(report: dict) -> str:
    lines = [
        f"{'part':<10} {'model':<15} {'params':>8} {'rmse mean ± std':>24} "
        f"{'ms/step':>8} {'ms/step*':>9} {'seconds':>8}"
    ]
    for part, result in report["parts"].items():
        for name, m in result["models"].items():
            steady = m["ms_per_step_after_first_epoch"]
            lines.append(
                f"{part:<10} {name:<15} {m['params']:>8,} "
                f"{m['rmse_mean']:>11.5f} ± {m['rmse_std']:<10.5f} "
                f"{m['ms_per_step']:>8.3f} {steady if steady is not None else float('nan'):>9.3f} "
                f"{m['seconds']:>8.1f}"
            )
        lines.append(
            f"{part:<10} {'(part total)':<15} {'':>8} {'':>24} {'':>8} {'':>9} "
            f"{result['seconds']:>8.1f}"
        )
    lines.append("ms/step includes JIT compilation; ms/step* excludes each trial's first epoch.")
    lines.append(f"peak RSS {report['peak_rss_mb']:.0f} MB")
    return "\n".join(lines)


# ------------------------------------------------------------------------------- CLI


def parse_parts(value: str) -> list[str]:
    parts = [p.strip() for p in value.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if not parts or unknown:
        raise argparse.ArgumentTypeError(
            f"`--parts` must be a comma-separated subset of {','.join(PARTS)}. Received: {value!r}"
        )
    return parts


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive int. Received: {value}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Run the Keras-RS DCN tutorial's protocol (Keras 3 + keras-rs, JAX CPU) "
        "on arrays from an .npz and write timings and RMSEs as JSON.",
        epilog="example: python benchmarks/keras_reference.py --data arrays.npz --out keras.json",
    )
    parser.add_argument("--data", required=True, help="input .npz (see the module docstring)")
    parser.add_argument("--out", help="JSON report to write (default: print only)")
    parser.add_argument(
        "--parts",
        type=parse_parts,
        default=list(PARTS),
        help="comma-separated parts to run (default: toy,movielens)",
    )
    parser.add_argument(
        "--trials",
        type=positive_int,
        default=10,
        help="MovieLens trials per model, fresh model each (default: 10)",
    )
    parser.add_argument(
        "--toy-trials",
        type=positive_int,
        default=1,
        help="toy trials per model; the tutorial runs one (default: 1)",
    )
    parser.add_argument(
        "--toy-epochs", type=positive_int, default=100, help="toy epochs (default: 100)"
    )
    parser.add_argument(
        "--ml-epochs", type=positive_int, default=10, help="MovieLens epochs (default: 10)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=42,
        help="trial t uses keras.utils.set_random_seed(seed + t) (default: 42)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    with np.load(args.data) as arrays:
        data = {}
        try:
            if "toy" in args.parts:
                data["toy"] = load_toy(arrays, args.data)
            if "movielens" in args.parts:
                data["movielens"] = load_movielens(arrays, args.data)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2

    parts = {}
    if "toy" in data:
        builders = {"cross": toy_cross_network, "deep": toy_deep_network}
        parts["toy"] = run_models(
            "toy", builders, data["toy"], args.toy_epochs, args.toy_trials, args.seed
        )
    if "movielens" in data:
        split, vocabulary_sizes = data["movielens"]
        parts["movielens"] = run_models(
            "movielens",
            movielens_builders(vocabulary_sizes),
            split,
            args.ml_epochs,
            args.trials,
            args.seed,
        )
    report = {
        "framework": "keras-rs",
        "versions": versions(),
        "config": {
            "learning_rate": LEARNING_RATE,
            "batch_size": BATCH_SIZE,
            "optimizer": "AdamW",
            "shuffle": False,
            "seed": args.seed,
            "data": os.path.abspath(args.data),
            "cpu_count": os.cpu_count(),
        },
        "parts": parts,
        "seconds": time.perf_counter() - start,
        "peak_rss_mb": peak_rss_mb(),
    }
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2)
            handle.write("\n")
    print(format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
