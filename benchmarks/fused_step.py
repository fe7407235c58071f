"""Does a fused training step pay on this CPU? The peer benchmark's DCN (39 fields × 16,
3 full-rank cross layers beside a [400, 400] MLP, batch 4096), one training step (forward,
BCE, backward, `KerasAdamW`) eager against `torch.compile` of the model (inductor, which
fuses the cross layer's `x0 ⊙ (W x + b) + x` and the MLP's bias + ReLU into the matmuls'
neighbours), compile time counted apart (issue 16).

Rounds alternate eager and compiled steps on the same batches; the figure is the median
step of each, and the compiled run's first steps (its compilation) are reported as such.

    PYTHONPATH=src python benchmarks/fused_step.py [--steps 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time

import torch

from dcnrank.config.model_config import DCNConfig
from dcnrank.config.train_config import TrainConfig
from dcnrank.models.dcn import build_dcn
from dcnrank.training.trainer import Trainer

FIELDS, WIDTH, BATCH, ROWS_PER_FIELD = 39, 16, 4096, 1600


def steps(model: torch.nn.Module, forward, batches, count: int) -> list[float]:  # noqa: ANN001
    """Seconds of each of `count` training steps of `forward` (the model or its compiled form)."""
    optimizer = Trainer(TrainConfig(learning_rate=1e-3, weight_decay=0.0)).make_optimizer(model)
    times = []
    for i in range(count):
        x, y = batches[i % len(batches)]
        began = time.perf_counter()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(forward(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - began)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(os.cpu_count() or 1)
    g = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(4):
        x = torch.randint(0, ROWS_PER_FIELD, (BATCH, FIELDS), generator=g)
        batches.append((x, (x[:, 0] % 2).float()))
    torch.manual_seed(0)
    config = DCNConfig(structure="parallel", embedding_dim=WIDTH, num_cross_layers=3, deep_units=(400, 400))
    base = build_dcn(config, [ROWS_PER_FIELD] * FIELDS)
    eager_model, compiled_model = copy.deepcopy(base), copy.deepcopy(base)
    began = time.perf_counter()
    compiled = torch.compile(compiled_model)
    first = steps(compiled_model, compiled, batches, 2)
    compile_s = time.perf_counter() - began
    eager, fused = [], []
    for _ in range(args.rounds):
        eager += steps(eager_model, eager_model, batches, args.steps)[2:]
        fused += steps(compiled_model, compiled, batches, args.steps)[2:]
    e, f = statistics.median(eager), statistics.median(fused)
    print(f"eager     {1000 * e:7.1f} ms/step  {BATCH / e:8,.0f} rows/s")
    print(f"compiled  {1000 * f:7.1f} ms/step  {BATCH / f:8,.0f} rows/s  ({e / f:.2f}× eager; "
          f"compilation {compile_s:.1f} s, first two steps {first[0]:.1f} s, {first[1]:.2f} s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
