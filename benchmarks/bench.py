"""`make bench`: dcnrank's speed on the seed's whole protocol, against the machine's peak and Keras-RS.

Times, in one process and one command:

1. the machine's matmul peak (fp32 and bf16, 2048³ and the DCN's batched shape);
2. the seed's protocol in dcnrank — toy (cross + deep, 100 epochs) and MovieLens
   (3 models × N trials × 10 epochs) — per precision: wall seconds per part,
   ms per training step per model, achieved matmul FLOP/s as a fraction of the
   peak, RMSE per model;
3. what each optimisation gains on one DCN training step (sequential eager →
   stacked trials → bf16);
4. with `--keras-python` (or keras-rs importable here), the same protocol in
   Keras-RS on JAX (benchmarks/keras_reference.py) on the same arrays, in a
   subprocess, and the speed ratio.

Writes `bench.json` (wall seconds, ms/step, achieved/peak, peak RSS, RMSE).
Timings on a shared 2-core machine swing with anything else that runs: every
ratio printed here is between runs of this one command.

Usage:
    python benchmarks/bench.py [--trials 10] [--precision fp32,bf16] [--parts toy,movielens]
                               [--keras-python PATH] [--quick]
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dcnrank.config.train_config import TrainConfig
from dcnrank.data import locate_movielens
from dcnrank.data.sources import load_movielens_source
from dcnrank.experiments.movielens import MOVIELENS_MODELS, MOVIELENS_TRAIN, encode_seed_features
from dcnrank.experiments.protocol import run_trials
from dcnrank.experiments.toy import TOY_FEATURES, TOY_MODELS, TOY_TRAIN, mixer_data
from dcnrank.models import build_dcn
from dcnrank.training import KerasAdamW
from dcnrank.training.stacked import StackedTrainer

HERE = Path(__file__).resolve().parent


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB (VmHWM: exact for this process alone)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


DEVICE = torch.device("cpu")
# the parts of the seed's protocol, in the order they run (`--parts`)
PARTS = ("toy", "movielens")


def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(dtype: torch.dtype, shape: tuple[int, ...], seconds: float = 1.5) -> float:
    """Best GFLOP/s of `a @ b` for `shape` = (m, k, n) or (t, m, k, n)."""
    *t, m, k, n = shape
    a = torch.randn(*t, m, k, dtype=dtype, device=DEVICE)
    b = torch.randn(*t, k, n, dtype=dtype, device=DEVICE)
    flops = 2 * m * k * n * (t[0] if t else 1)
    for _ in range(3):
        a @ b
    sync()
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        began = time.perf_counter()
        for _ in range(5):
            a @ b
        sync()
        best = max(best, 5 * flops / (time.perf_counter() - began) / 1e9)
    return best


def forward_matmul_flops(model: nn.Module) -> int:
    """Matmul FLOPs of one row's forward pass: 2·in·out per linear map."""
    return sum(2 * m.in_features * m.out_features for m in model.modules() if isinstance(m, nn.Linear))


def load_arrays(seed: int) -> dict[str, np.ndarray]:
    """The toy and MovieLens arrays both frameworks train on."""
    x, y = mixer_data(100_000, seed)
    source = load_movielens_source(locate_movielens())
    # vocabularies on all rows, as the seed (so table sizes and #params equal Keras'); disjoint split
    features = encode_seed_features(source, "random", "all", seed)
    (train_x, train_y), (test_x, test_y) = features.train, features.test
    return {
        "toy_train_x": x[:90_000].numpy(),
        "toy_train_y": y[:90_000].numpy(),
        "toy_test_x": x[90_000:].numpy(),
        "toy_test_y": y[90_000:].numpy(),
        "ml_train_x": train_x.numpy(),
        "ml_train_y": train_y.numpy(),
        "ml_test_x": test_x.numpy(),
        "ml_test_y": test_y.numpy(),
        "ml_vocabulary_sizes": np.array(features.vocabulary_sizes),
    }


def run_part(part: str, arrays: dict, trials: int, epochs: int, precision: str, seed: int, peak: float) -> dict:
    """One part of the protocol in dcnrank: per model RMSE, seconds, ms/step, achieved/peak."""
    if part == "toy":
        models, base = TOY_MODELS, TOY_TRAIN

        def build(c):
            return build_dcn(c, dense_features=len(TOY_FEATURES))
    else:
        models, base = MOVIELENS_MODELS, MOVIELENS_TRAIN
        sizes = [int(s) for s in arrays["ml_vocabulary_sizes"]]

        def build(c):
            return build_dcn(c, vocabulary_sizes=sizes)

    prefix = "toy" if part == "toy" else "ml"
    train = (torch.from_numpy(arrays[f"{prefix}_train_x"]), torch.from_numpy(arrays[f"{prefix}_train_y"]))
    test = (torch.from_numpy(arrays[f"{prefix}_test_x"]), torch.from_numpy(arrays[f"{prefix}_test_y"]))
    config = replace(base, epochs=epochs, precision=precision)
    steps = epochs * -(-len(train[0]) // config.batch_size)
    began = time.perf_counter()
    out = {}
    for name, model_config in models.items():
        result, model = run_trials(
            name, functools.partial(build, model_config), train, test, config, trials, seed, device=DEVICE
        )
        flops = 3 * forward_matmul_flops(model) * len(train[0]) * epochs * trials  # forward + 2 backward
        out[name] = {
            "rmse": result.rmse,
            "rmse_mean": result.rmse_mean,
            "rmse_std": result.rmse_std,
            "params": result.params,
            "seconds": result.seconds,
            "ms_per_step": 1000 * result.seconds / (steps * trials),
            "gflops": flops / result.seconds / 1e9,
            "achieved_over_peak": flops / result.seconds / 1e9 / peak,
        }
    return {"seconds": time.perf_counter() - began, "models": out}


def step_ablation(arrays: dict, trials: int, precisions: list[str], steps: int = 40) -> dict[str, float]:
    """ms per model-step of the stacked DCN, for each optimisation switched on in turn (in each of `precisions`)."""
    sizes = [int(s) for s in arrays["ml_vocabulary_sizes"]]
    config = MOVIELENS_MODELS["cross"]
    x = torch.from_numpy(arrays["ml_train_x"][:1024]).to(DEVICE)
    y = torch.from_numpy(arrays["ml_train_y"][:1024]).to(DEVICE)

    def eager_sequential() -> float:
        model = build_dcn(config, vocabulary_sizes=sizes).to(DEVICE)
        optimizer = KerasAdamW(model.parameters(), lr=0.01)

        def step():
            loss = torch.nn.functional.mse_loss(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        return _time(step, steps)

    def stacked(precision: str) -> float:
        models = [build_dcn(config, vocabulary_sizes=sizes).to(DEVICE) for _ in range(trials)]
        trainer = StackedTrainer(TrainConfig(precision=precision), list(range(trials)))
        base, params, buffers = trainer._stack(models)
        optimizer = KerasAdamW(params.values(), lr=0.01)

        def step():
            loss = (trainer._forward(base, params, buffers, x, shared=True) - y).square().mean(-1).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        return _time(step, max(4, steps // trials)) / trials

    return {"sequential_eager_fp32": eager_sequential(), **{f"stacked_{trials}_{p}": stacked(p) for p in precisions}}


def _time(step, n: int) -> float:
    for _ in range(3):
        step()
    sync()
    began = time.perf_counter()
    for _ in range(n):
        step()
    sync()
    return 1000 * (time.perf_counter() - began) / n


def keras_python(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    if os.environ.get("DCNRANK_KERAS_PYTHON"):
        return os.environ["DCNRANK_KERAS_PYTHON"]
    if importlib.util.find_spec("keras_rs") is not None:
        return sys.executable
    return None


def run_keras(python: str, arrays: dict, trials: int, toy_epochs: int, ml_epochs: int, parts: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        data, out = Path(tmp) / "arrays.npz", Path(tmp) / "keras.json"
        np.savez(data, **arrays)
        command = [
            python, str(HERE / "keras_reference.py"), "--data", str(data), "--out", str(out),
            "--trials", str(trials), "--toy-epochs", str(toy_epochs), "--ml-epochs", str(ml_epochs),
            "--parts", ",".join(parts),
        ]  # fmt: skip
        began = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"keras reference failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        report = json.loads(out.read_text())
        report["wall_seconds"] = time.perf_counter() - began
        return report


def print_table(ours: dict, keras: dict | None) -> None:
    rows = [("part", "model", "precision", "RMSE mean ± std", "ms/step", "achieved/peak", "seconds")]
    for precision, parts in ours.items():
        for part, result in parts.items():
            for name, m in result["models"].items():
                rows.append((part, name, precision, f"{m['rmse_mean']:.5f} ± {m['rmse_std']:.5f}",
                             f"{m['ms_per_step']:.3f}", f"{m['achieved_over_peak']:.0%}",
                         f"{m['seconds']:.1f}"))  # fmt: skip
    if keras:
        for part, result in keras["parts"].items():
            for name, m in result["models"].items():
                rows.append((part, name, "keras-rs/jax", f"{m['rmse_mean']:.5f} ± {m['rmse_std']:.5f}",
                             f"{m['ms_per_step']:.3f}", "", f"{m['seconds']:.1f}"))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10, help="MovieLens trials per model (default: 10)")
    parser.add_argument("--toy-epochs", type=int, default=100)
    parser.add_argument("--ml-epochs", type=int, default=10)
    parser.add_argument("--precision", default="fp32,bf16", help="comma-separated: fp32, bf16")
    parser.add_argument("--keras-python", default=None, help="python with keras-rs + jax for the reference")
    parser.add_argument("--no-keras", action="store_true", help="skip the Keras-RS reference")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 trials, 2 toy / 1 MovieLens epochs")
    parser.add_argument(
        "--parts", default="toy,movielens", help="comma-separated parts of the protocol: toy, movielens (default: both)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--out", default="bench.json")
    args = parser.parse_args(argv)
    parts = args.parts.split(",")
    if not parts or any(p not in PARTS for p in parts):
        parser.error(f"--parts must name some of {', '.join(PARTS)}. Received: --parts={args.parts}")
    global DEVICE
    DEVICE = torch.device(args.device)
    if args.quick:
        args.trials, args.toy_epochs, args.ml_epochs = 2, 2, 1
    began = time.perf_counter()
    where = torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else torch.backends.cpu.get_cpu_capability()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {DEVICE}: {where}")
    precisions = args.precision.split(",")
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    peaks = {}  # only the precisions asked for: on a CPU without bf16 instructions one bf16 probe takes minutes
    for p in precisions:
        peaks[f"{p}_2048"] = matmul_peak(dtypes[p], (2048, 2048, 2048))
        peaks[f"{p}_dcn_bmm"] = matmul_peak(dtypes[p], (args.trials, 1024, 192, 192))
    peak = {p: max(peaks[f"{p}_2048"], peaks[f"{p}_dcn_bmm"]) for p in precisions}
    print("matmul peak GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items()))
    arrays = load_arrays(args.seed)
    ours: dict[str, dict] = {}
    for precision in precisions:
        ours[precision] = {}
        for part, epochs in (("toy", args.toy_epochs), ("movielens", args.ml_epochs)):
            if part not in parts:
                continue
            trials = 1 if part == "toy" else args.trials
            ours[precision][part] = run_part(part, arrays, trials, epochs, precision, args.seed, peak[precision])
            print(f"dcnrank {precision} {part}: {ours[precision][part]['seconds']:.1f} s", flush=True)
        ours[precision]["seconds"] = sum(p["seconds"] for p in ours[precision].values())
    our_rss = peak_rss_mb()
    ablation = step_ablation(arrays, args.trials, precisions) if "movielens" in parts else {}
    keras = None
    python = None if args.no_keras else keras_python(args.keras_python)
    if python:
        print("running the Keras-RS reference ...", flush=True)
        keras = run_keras(python, arrays, args.trials, args.toy_epochs, args.ml_epochs, parts)
    parts_only = {p: {k: v for k, v in r.items() if k != "seconds"} for p, r in ours.items()}
    print()
    print_table(parts_only, keras)
    print("\nms per model-step of the stacked DCN (MovieLens shape, batch 1024):")
    for name, ms in ablation.items():
        print(f"  {name:28s} {ms:.2f} ms")
    summary: dict[str, Any] = {
        "device": str(DEVICE),
        "peak_gflops": peaks,
        "ours": ours,
        "ablation_ms_per_step": ablation,
        "peak_rss_mb": our_rss,
    }
    print(f"\npeak RSS (dcnrank process): {our_rss:.0f} MB")
    for precision, parts in ours.items():
        line = f"dcnrank {precision}: whole protocol {parts['seconds']:.1f} s"
        if keras:
            keras_seconds = sum(p["seconds"] for p in keras["parts"].values())
            line += f"; Keras-RS/JAX {keras_seconds:.1f} s; speed-up ×{keras_seconds / parts['seconds']:.2f}"
            summary.setdefault("speedup", {})[precision] = keras_seconds / parts["seconds"]
        print(line)
    if keras:
        summary["keras"] = keras
    summary["seconds"] = time.perf_counter() - began
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
