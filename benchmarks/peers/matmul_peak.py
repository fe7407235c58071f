"""The machine's matmul peak for the peers' table: fp32 and bf16 products of
4096×1024 @ 1024×1024, the best GFLOP/s of single products over about `--seconds` each, on
every CPU this process may use.

Each precision is timed as `torch.mm` and as `F.linear` (what a model's dense layers call),
and the peak is the better of the two: they can take different kernels. On a CPU without
bf16 instructions (AVX2 only) a bf16 `torch.mm` falls back to a slow generic path
(≈0.8 GFLOP/s on a 2-core AMD EPYC) while `F.linear` goes through oneDNN (≈8 GFLOP/s), so
`torch.mm` alone would understate what a bf16 model can reach. One product at a time, after
one warm-up, so that even the slow path ends in seconds.

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


def product_gflops(
    dtype: torch.dtype, kind: str = "mm", shape: tuple[int, int, int] = SHAPE, seconds: float = 1.5
) -> float:
    """Best GFLOP/s (2·m·k·n per product) of `torch.mm(a, b)` (`kind="mm"`) or
    `F.linear(a, bᵀ)` (`kind="linear"`) in `dtype`: one warm-up, then products until `seconds`
    have passed (at least one).

    Raises:
        ValueError: on another `kind`.
    """
    if kind not in ("mm", "linear"):
        raise ValueError(f"`kind` must be 'mm' or 'linear'. Received: kind={kind!r}")
    m, k, n = shape
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    weight = b.T.contiguous()  # (n, k), as a Linear layer stores it

    def product() -> torch.Tensor:
        return torch.mm(a, b) if kind == "mm" else torch.nn.functional.linear(a, weight)

    product()
    best, deadline = 0.0, time.perf_counter() + seconds
    while True:
        began = time.perf_counter()
        product()
        best = max(best, 2 * m * k * n / (time.perf_counter() - began) / 1e9)
        if time.perf_counter() >= deadline:
            return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="timing per precision (default: 1.5)")
    args = parser.parse_args(argv)
    torch.set_num_threads(thread_count())
    by_kind = {
        name: {kind: product_gflops(dtype, kind, seconds=args.seconds) for kind in ("mm", "linear")}
        for name, dtype in DTYPES.items()
    }
    peaks = {name: max(kinds.values()) for name, kinds in by_kind.items()}
    print(json.dumps({"shape": list(SHAPE), "threads": torch.get_num_threads(), "gflops": peaks, "by_kind": by_kind}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
