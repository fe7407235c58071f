"""What every peer runner shares: the protocol's constants, the data files, AUC and log loss,
step timing, peak RSS and the one JSON line a runner prints.

Only numpy and the standard library are imported here, so that each runner can import this
module from its own library's virtual environment.

The data folder (written once by the driver, `bench_peers.py`) holds

- `ids.npy`: int32 `(N, 39)`, every column categorical with its own ids `0 … V_c − 1`
  (id 0 is the column's out-of-vocabulary id);
- `labels.npy`: float32 `(N,)`, 0 or 1;
- `vocab.json`: `{"vocabulary_sizes": [V_1, …, V_39], "columns": [...], "train_rows": n}`.

Training rows are the first `train_rows` rows (80%), test rows the rest, in stored order.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# The protocol (docs/benchmarks.md, "Peers side by side"): the same DCN-V2 in every library.
EMBEDDING_DIM = 16
CROSS_LAYERS = 3
DEEP_UNITS = (400, 400)
BATCH_SIZE = 4096
EVAL_BATCH_SIZE = 16384
LEARNING_RATE = 1e-3
TRAIN_FRACTION = 0.8
# Steps left out of the steady rows/s: the first ones pay for allocation, JIT compilation, caches.
WARMUP_STEPS = 5
# Probabilities are clipped to [EPSILON, 1 − EPSILON] for the log loss.
EPSILON = 1e-7

RECORD_KEYS = (
    "library", "variant", "version", "seed", "precision", "parameters", "threads",
    "train_rows", "test_rows", "steps", "steady_from_step", "steady_rows_per_s", "mean_rows_per_s", "median_step_s",
    "first_step_s", "last_step_s", "compile_s", "epoch_s", "test_auc", "test_logloss", "inference_rows_per_s",
    "peak_rss_mb", "settings", "notes",
)  # fmt: skip


@dataclass(frozen=True)
class Data:
    """The pre-encoded table, split into its training and test rows."""

    train_ids: np.ndarray  # (n_train, F) int32
    train_labels: np.ndarray  # (n_train,) float32
    test_ids: np.ndarray  # (n_test, F) int32
    test_labels: np.ndarray  # (n_test,) float32
    vocabulary_sizes: list[int]

    @property
    def num_fields(self) -> int:
        return len(self.vocabulary_sizes)


def train_rows(rows: int) -> int:
    """How many of `rows` are training rows: the first 80% (`rows · 4 // 5`).

    Example:
        >>> train_rows(1_000_000), train_rows(20_000)
        (800000, 16000)
    """
    return rows * 4 // 5


def load_data(folder: str | Path) -> Data:
    """Read `ids.npy`, `labels.npy` and `vocab.json` from `folder` and split them.

    Raises:
        FileNotFoundError: naming the missing file.
        ValueError: if the files disagree (shapes, dtypes, an id beyond its vocabulary).
    """
    folder = Path(folder)
    for name in ("ids.npy", "labels.npy", "vocab.json"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name}: missing; the driver (bench_peers.py) writes it")
    ids = np.load(folder / "ids.npy")
    labels = np.load(folder / "labels.npy")
    meta = json.loads((folder / "vocab.json").read_text())
    sizes = [int(v) for v in meta["vocabulary_sizes"]]
    if ids.dtype != np.int32 or ids.ndim != 2 or ids.shape[1] != len(sizes):
        raise ValueError(f"{folder / 'ids.npy'}: must be int32 (N, {len(sizes)}). Received {ids.dtype} {ids.shape}")
    if labels.dtype != np.float32 or labels.shape != (len(ids),):
        shape = f"{labels.dtype} {labels.shape}"
        raise ValueError(f"{folder / 'labels.npy'}: must be float32 ({len(ids)},). Received {shape}")
    if ids.min() < 0 or (ids.max(axis=0) >= np.array(sizes)).any():
        raise ValueError(f"{folder / 'ids.npy'}: an id lies outside its column's vocabulary")
    n = int(meta.get("train_rows", train_rows(len(ids))))
    return Data(ids[:n], labels[:n], ids[n:], labels[n:], sizes)


# --------------------------------------------------------------------------- model size and cost


def forward_flops_per_row(
    num_fields: int,
    embedding_dim: int = EMBEDDING_DIM,
    cross_layers: int = CROSS_LAYERS,
    deep_units: Sequence[int] = DEEP_UNITS,
) -> int:
    """Matmul FLOPs of one row's forward pass (2 per multiply-add; lookups and ⊙ not counted).

    With `d = num_fields · embedding_dim` (x0's width) and deep units `u_1 … u_k`:

        cross:  cross_layers · 2·d·d          (W x_l, a full d × d kernel per layer)
        deep:   2·d·u_1 + Σ 2·u_{i-1}·u_i     (the MLP's Dense layers)
        head:   2·(d + u_k)·1                 (Dense(1) on concat(cross, deep))

    Example:
        >>> forward_flops_per_row(2, embedding_dim=2, cross_layers=1, deep_units=(3,))  # d = 4
        70
    """
    d = num_fields * embedding_dim
    widths = [d, *deep_units]
    deep = sum(2 * a * b for a, b in zip(widths, widths[1:], strict=False))
    return cross_layers * 2 * d * d + deep + 2 * (d + widths[-1])


def train_flops_per_row(num_fields: int, **shape: Any) -> int:
    """Matmul FLOPs of one training row: 3 × the forward pass (forward, and the backward's two
    products per layer, one for the weight gradient and one for the input gradient; the input
    gradient of the first layers is needed too, since the embeddings are trained).

    Example:
        >>> train_flops_per_row(39)  # the protocol's model: 3 · 3,157,504
        9472512
    """
    return 3 * forward_flops_per_row(num_fields, **shape)


def expected_parameters(
    vocabulary_sizes: Sequence[int],
    embedding_dim: int = EMBEDDING_DIM,
    cross_layers: int = CROSS_LAYERS,
    deep_units: Sequence[int] = DEEP_UNITS,
) -> int:
    """Trainable scalars of the protocol's model: embeddings, full-rank cross layers with
    biases, the MLP and the one-unit head (with its bias).

    Example:
        >>> expected_parameters([5, 3], embedding_dim=2, cross_layers=1, deep_units=(3,))  # 16 + 20 + 15 + 8
        59
    """
    d = len(vocabulary_sizes) * embedding_dim
    widths = [d, *deep_units]
    deep = sum(a * b + b for a, b in zip(widths, widths[1:], strict=False))
    return sum(vocabulary_sizes) * embedding_dim + cross_layers * (d * d + d) + deep + (d + widths[-1]) + 1


def check_parameters(found: int, vocabulary_sizes: Sequence[int]) -> int:
    """`found` if it equals :func:`expected_parameters`, else a ValueError naming both."""
    expected = expected_parameters(vocabulary_sizes)
    if found != expected:
        raise ValueError(f"the model has {found:,} parameters, the protocol's has {expected:,}")
    return found


# --------------------------------------------------------------------------- metrics


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve: the Mann–Whitney statistic, ties given their average rank.

        AUC = (Σ_{positives} rank − P(P + 1)/2) / (P · N)

    with ranks 1 … P+N of the scores in increasing order, tied scores sharing the mean
    of their ranks (a tied positive–negative pair counts ½).

    Raises:
        ValueError: if the lengths differ or one class is absent.

    Example:
        >>> auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
        0.75
        >>> auc(np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.2, 0.9]))  # one tied pair: ½
        0.875
    """
    y = np.asarray(labels, dtype=np.float64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if len(y) != len(s):
        raise ValueError(f"`labels` and `scores` must have the same length. Received: {len(y)} and {len(s)}")
    positives = float(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        raise ValueError(f"AUC needs both classes. Received: {positives:.0f} positives, {negatives:.0f} negatives")
    order = np.argsort(s, kind="mergesort")
    sorted_scores = s[order]
    # each run of equal scores gets the mean of its 1-based ranks
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], len(s)]
    mean_rank = (starts + 1 + ends) / 2.0  # mean of start+1 … end
    ranks = np.empty(len(s))
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """`1 / (1 + exp(−z))` in float64, without overflow for large |z|."""
    z = np.asarray(logits, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -z))


def logloss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean binary cross-entropy of probabilities clipped to `[EPSILON, 1 − EPSILON]`.

    Example:
        >>> round(logloss(np.array([1, 0]), np.array([0.5, 0.5])), 4)
        0.6931
    """
    y = np.asarray(labels, dtype=np.float64).ravel()
    p = np.clip(np.asarray(probabilities, dtype=np.float64).ravel(), EPSILON, 1 - EPSILON)
    return float(-(y * np.log(p) + (1 - y) * np.log1p(-p)).mean())


# --------------------------------------------------------------------------- timing


def step_rows(rows: int, batch_size: int = BATCH_SIZE) -> list[int]:
    """Rows of each step of one epoch in stored order (the last one may be partial).

    Example:
        >>> step_rows(10, batch_size=4)
        [4, 4, 2]
    """
    return [min(batch_size, rows - start) for start in range(0, rows, batch_size)]


@dataclass
class StepTimer:
    """Wall-clock marks of one epoch: call :meth:`start_step` as every training step begins
    (a forward pre-hook, a Keras callback) and :meth:`finish` when the epoch has ended.

    Step `i` lasts from its start to the next step's start (the last step: to `finish`), so
    every step includes its share of the library's loop and data pipeline.
    """

    marks: list[float] = field(default_factory=list)
    ended: float | None = None

    def start_step(self, *_: Any) -> None:
        self.marks.append(time.perf_counter())

    def finish(self) -> None:
        self.ended = time.perf_counter()

    def step_seconds(self) -> list[float]:
        if self.ended is None or not self.marks:
            raise ValueError("StepTimer: no step was marked, or finish() was not called")
        return [float(s) for s in np.diff([*self.marks, self.ended])]

    def summary(self, rows_per_step: Sequence[int]) -> dict[str, Any]:
        """`steps`, `steady_from_step`, `steady_rows_per_s`, `mean_rows_per_s`, `median_step_s`,
        `first_step_s` and `last_step_s` of the epoch.

        The steps after the first `WARMUP_STEPS` are the steady ones (an epoch of
        `WARMUP_STEPS` steps or fewer, a smoke test, leaves out only the first step).

        - `steady_rows_per_s`, a median: a full batch's rows divided by the median time of
          the steady full-batch steps. The median leaves out what one step alone pays, such
          as JAX compiling again for a smaller last batch.
        - `mean_rows_per_s`, a mean: the rows of every steady step divided by their time.

        Raises:
            ValueError: if the number of marked steps is not `len(rows_per_step)`.

        Example:
            >>> timer = StepTimer(marks=[0.0, 3.0, 4.0, 6.0], ended=7.0)
            >>> summary = timer.summary([10, 10, 10, 5])  # steady: steps 2–4, full: steps 2 and 3
            >>> summary["steady_rows_per_s"], summary["mean_rows_per_s"]  # 10 rows / 1.5 s; 25 rows / 4 s
            (6.666666666666667, 6.25)
        """
        seconds = self.step_seconds()
        if len(seconds) != len(rows_per_step):
            raise ValueError(f"StepTimer: {len(seconds)} steps were marked, the epoch has {len(rows_per_step)}")
        skip = WARMUP_STEPS if len(seconds) > WARMUP_STEPS else min(1, len(seconds) - 1)
        steady, steady_rows = seconds[skip:], list(rows_per_step[skip:])
        full = [s for s, rows in zip(steady, steady_rows, strict=True) if rows == max(rows_per_step)] or steady
        median = float(np.median(full))
        return {
            "steps": len(seconds),
            "steady_from_step": skip + 1,
            "steady_rows_per_s": max(rows_per_step) / median if median > 0 else None,
            "mean_rows_per_s": sum(steady_rows) / sum(steady) if sum(steady) > 0 else None,
            "median_step_s": median,
            "first_step_s": seconds[0],
            "last_step_s": seconds[-1],
        }


def batches(array: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive slices of `batch_size` rows (the last one may be shorter)."""
    for start in range(0, len(array), batch_size):
        yield array[start : start + batch_size]


def time_inference(
    predict: Callable[[np.ndarray], np.ndarray], ids: np.ndarray, batch_size: int = EVAL_BATCH_SIZE
) -> tuple[np.ndarray, float]:
    """Scores of every row of `ids` and the rows/s of that pass, `predict` taking one batch.

    Warm-up first: one full batch and, when the rows do not split evenly, one batch of the
    last batch's size, so that a JIT library has compiled both shapes before the clock runs.

    Returns:
        `(scores (N,) float64, rows per second)`.
    """
    predict(ids[:batch_size])
    if len(ids) % batch_size:
        predict(ids[-(len(ids) % batch_size) :])
    began = time.perf_counter()
    scores = np.concatenate([np.asarray(predict(b), dtype=np.float64).ravel() for b in batches(ids, batch_size)])
    return scores, len(ids) / (time.perf_counter() - began)


# --------------------------------------------------------------------------- process


def thread_count() -> int:
    """The CPUs this process may run on: all cores, or the driver's `--threads` (its affinity)."""
    return len(os.sched_getaffinity(0))


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB (`ru_maxrss`, kB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def evaluation(data: Data, scores: np.ndarray, rows_per_s: float, probabilities: bool) -> dict[str, float]:
    """`test_auc`, `test_logloss` and `inference_rows_per_s` from one pass over the test rows;
    `scores` are probabilities, or logits when `probabilities` is False."""
    p = scores if probabilities else sigmoid(scores)
    return {
        "test_auc": auc(data.test_labels, p),
        "test_logloss": logloss(data.test_labels, p),
        "inference_rows_per_s": rows_per_s,
    }


def make_record(**values: Any) -> dict[str, Any]:
    """The runner's JSON record: every key of `RECORD_KEYS` (None where not given).

    Raises:
        ValueError: on a key that is not in `RECORD_KEYS`.
    """
    unknown = sorted(set(values) - set(RECORD_KEYS))
    if unknown:
        raise ValueError(f"unknown record keys: {', '.join(unknown)}")
    record: dict[str, Any] = dict.fromkeys(RECORD_KEYS)
    record.update(values, peak_rss_mb=peak_rss_mb(), threads=thread_count())
    return record


def runner_parser(description: str) -> argparse.ArgumentParser:
    """The arguments every runner takes: `--data FOLDER --seed S`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", required=True, help="folder with ids.npy, labels.npy, vocab.json")
    parser.add_argument("--seed", type=int, default=0, help="seeds the initial weights (default: 0)")
    return parser


def run_main(benchmark: Callable[[argparse.Namespace], dict[str, Any]], args: argparse.Namespace) -> int:
    """Run `benchmark(args)` with everything it prints sent to stderr, then print its record as
    one JSON line on stdout. A failure prints its traceback to stderr and returns 1 (the driver
    reports the last line)."""
    try:
        with contextlib.redirect_stdout(sys.stderr):
            record = benchmark(args)
    except Exception as error:  # noqa: BLE001 - the driver reports any failure as a row
        traceback.print_exc()
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(json.dumps(record), flush=True)
    return 0
