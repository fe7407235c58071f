"""Peak resident memory of training steps followed by validation passes, with and without
`release_free_memory` (issue 16: glibc keeps freed activations resident).

The peer benchmark's model (39 categorical fields × 16-wide embeddings, 3 full-rank cross
layers beside a [400, 400] MLP) on random ids. Each mode runs in a fresh process:
`rounds` × (`steps` training steps of 4,096 rows, then a forward pass over `eval_rows`
rows in batches of 4,096), and reports its peak RSS (`VmHWM`) and seconds spent in
training and in evaluation. Modes: `none` (no release), `every 8` (what
`Trainer.predict` does, `RELEASE_EVERY_BATCHES`), `every 16`, `every 1` (after every batch).

    PYTHONPATH=src .venv/bin/python benchmarks/free_memory.py [--rounds 2] [--steps 40] [--eval-rows 200000]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

FIELDS, TABLE_ROWS, BATCH = 39, 2_400, 4096  # ≈ 93,600 embedding rows, as the peer table's


def one_mode(every: int, rounds: int, steps: int, eval_rows: int) -> dict[str, float]:
    import torch

    from dcnrank.config.model_config import DCNConfig
    from dcnrank.free_memory import release_free_memory
    from dcnrank.models.dcn import build_dcn

    torch.manual_seed(0)
    config = DCNConfig(structure="parallel", embedding_dim=16, num_cross_layers=3, projection_dim=None,
                       deep_units=(400, 400), dropout=0.0, cross_type="matrix")  # fmt: skip
    model = build_dcn(config, vocabulary_sizes=[TABLE_ROWS] * FIELDS)
    x = torch.randint(0, TABLE_ROWS, (max(eval_rows, steps * BATCH), FIELDS), dtype=torch.int32)
    y = torch.rand(len(x))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_s = eval_s = 0.0
    for _ in range(rounds):
        model.train()
        began = time.perf_counter()
        for s in range(0, steps * BATCH, BATCH):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x[s : s + BATCH]), y[s : s + BATCH])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        train_s += time.perf_counter() - began
        if every:
            release_free_memory()
        model.eval()
        began = time.perf_counter()
        with torch.no_grad():
            outputs = []
            for s in range(0, eval_rows, BATCH):
                outputs.append(model(x[s : s + BATCH]))
                if every and len(outputs) % every == 0:
                    release_free_memory()
        eval_s += time.perf_counter() - began
    peak = int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024
    return {"peak_mb": peak, "train_s": train_s, "eval_s": eval_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--eval-rows", type=int, default=200_000)
    parser.add_argument("--mode", type=int, default=None, help=argparse.SUPPRESS)  # a child's mode
    args = parser.parse_args(argv)
    if args.mode is not None:
        print(json.dumps(one_mode(args.mode, args.rounds, args.steps, args.eval_rows)))
        return 0
    print(f"{args.rounds} rounds of {args.steps} training steps of {BATCH} rows, then {args.eval_rows:,} rows scored")
    for every, label in ((0, "none"), (8, "every 8"), (16, "every 16"), (1, "every 1")):
        command = [sys.executable, __file__, "--mode", str(every), "--rounds", str(args.rounds),
                   "--steps", str(args.steps), "--eval-rows", str(args.eval_rows)]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"  release {label:8s} peak RSS {r['peak_mb']:7,.0f} MB   training {r['train_s']:6.1f} s   "
              f"evaluation {r['eval_s']:6.1f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
