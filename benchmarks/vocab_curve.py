"""Step time against the vocabulary: the same DCN and batch with 10⁴ … 10⁷ embedding rows,
dense against sparse embedding updates (issue 16; part of `make bench`).

The model is the peer benchmark's (benchmarks/peers): 39 categorical fields × 16-wide
embeddings, 3 full-rank cross layers in parallel with a [400, 400] ReLU MLP, one logit, BCE,
AdamW lr 1e-3 without weight decay, batches of 4096 rows. The embedding rows are spread
evenly over the 39 fields and every batch draws its ids uniformly (the most distinct rows a
batch can touch: the worst case for sparse updates). Each (rows, updates) point runs in a
fresh process through `Trainer.fit`, so its peak RSS is its own; the step time is the median
time between consecutive training steps after `--warmup` steps.

The goal: with sparse updates, the step with 10⁷ rows costs ≤ 1.3× the step with 10⁴.

    python benchmarks/vocab_curve.py [--rows 10000 100000 1000000 10000000] [--steps 30] [--json vocab_curve.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench_scale import peak_rss_mb  # this folder is on the path when a script here runs

FIELDS, WIDTH, BATCH = 39, 16, 4096


class RandomBatches:
    """A `BatchStream` of `steps` batches of uniformly drawn ids (8 distinct batches, cycled)."""

    def __init__(self, sizes: list[int], steps: int) -> None:
        import torch

        g = torch.Generator().manual_seed(0)
        self.steps = steps
        self.held = []
        for _ in range(8):
            ids = torch.stack([torch.randint(0, s, (BATCH,), generator=g) for s in sizes], dim=1)
            self.held.append((ids, (ids[:, 0] % 2).float(), 1.0))

    def num_batches(self, epoch: int) -> int:
        return self.steps

    def batches(self, epoch: int, skip: int):  # noqa: ANN201
        for i in range(skip, self.steps):
            yield self.held[i % len(self.held)]

    def fingerprint(self) -> dict[str, Any]:
        return {"rows": self.steps * BATCH}


def measure(rows: int, updates: str, steps: int, warmup: int) -> dict[str, Any]:
    """One point, in this process: median step seconds and peak RSS."""
    import torch

    from dcnrank.config.model_config import DCNConfig
    from dcnrank.config.train_config import TrainConfig
    from dcnrank.models.dcn import build_dcn
    from dcnrank.training.trainer import Trainer

    torch.set_num_threads(os.cpu_count() or 1)
    sizes = [max(2, rows // FIELDS)] * FIELDS
    config = DCNConfig(structure="parallel", embedding_dim=WIDTH, num_cross_layers=3, deep_units=(400, 400))
    torch.manual_seed(0)
    model = build_dcn(config, sizes)
    stamps: list[float] = []

    def bce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        stamps.append(time.perf_counter())
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)

    train = TrainConfig(epochs=1, batch_size=BATCH, learning_rate=1e-3, weight_decay=0.0, embedding_updates=updates)
    Trainer(train, loss_fn=bce).fit(model, RandomBatches(sizes, warmup + steps + 1), None)
    gaps = [b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1 :], strict=False)]
    return {"rows": sum(sizes), "updates": updates, "step_ms": 1000 * statistics.median(gaps),
            "peak_rss_mb": peak_rss_mb(), "steps": len(gaps)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", type=int, default=[10_000, 100_000, 1_000_000, 10_000_000])
    parser.add_argument("--updates", nargs="+", default=["dense", "sparse"], choices=["dense", "sparse"])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--point", nargs=2, metavar=("ROWS", "UPDATES"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.point:
        print(json.dumps(measure(int(args.point[0]), args.point[1], args.steps, args.warmup)))
        return 0
    results = []
    print(f"{'rows':>12} {'updates':>8} {'ms/step':>9} {'× first':>8} {'peak RSS MB':>12}")
    first: dict[str, float] = {}
    for rows in args.rows:
        for updates in args.updates:
            command = [sys.executable, __file__, "--point", str(rows), updates,
                       "--steps", str(args.steps), "--warmup", str(args.warmup)]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"{rows:>12} {updates:>8} failed: {done.stderr.strip().splitlines()[-1:]}")
                continue
            point = json.loads(done.stdout.strip().splitlines()[-1])
            first.setdefault(updates, point["step_ms"])
            point["vs_first"] = point["step_ms"] / first[updates]
            results.append(point)
            print(f"{point['rows']:>12,} {updates:>8} {point['step_ms']:>9.1f} {point['vs_first']:>7.2f}×"
                  f" {point['peak_rss_mb']:>12,.0f}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
