"""The machine's matmul peak for the peers' table: fp32 and bf16 `torch.mm` of
4096×1024 @ 1024×1024, the best GFLOP/s of single products over about `--seconds` each, on
every CPU this process may use.

One product at a time (after one warm-up) rather than `make bench`'s batches of five: on a
CPU without bf16 instructions (AVX2 only) a bf16 product of this size takes seconds, and the
measurement should still end in seconds.

Run by the driver with the project's `.venv` before and after the runs; prints one JSON line.

    .venv/bin/python benchmarks/peers/matmul_peak.py [--seconds 1.5]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence

import torch
from common import thread_count

SHAPE = (4096, 1024, 1024)  # (m, k, n): (m, k) @ (k, n), about the cross layers' (4096, 624) @ (624, 624)
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def mm_gflops(dtype: torch.dtype, shape: tuple[int, int, int] = SHAPE, seconds: float = 1.5) -> float:
    """Best GFLOP/s (2·m·k·n per product) of `torch.mm` in `dtype`, one warm-up, then
    products until `seconds` have passed (at least one)."""
    m, k, n = shape
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    torch.mm(a, b)
    best, deadline = 0.0, time.perf_counter() + seconds
    while True:
        began = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * m * k * n / (time.perf_counter() - began) / 1e9)
        if time.perf_counter() >= deadline:
            return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="timing per precision (default: 1.5)")
    args = parser.parse_args(argv)
    torch.set_num_threads(thread_count())
    peaks = {name: mm_gflops(dtype, seconds=args.seconds) for name, dtype in DTYPES.items()}
    print(json.dumps({"shape": list(SHAPE), "threads": torch.get_num_threads(), "gflops": peaks}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
