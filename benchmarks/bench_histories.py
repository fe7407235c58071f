"""Memory of sparse SVD++ histories at scale: `Interactions` for 1M users × 100k items ×
20M random interactions, a user `InteractionHistory` over them, one forward batch of 4096
rows, then the transpose an item history needs. Prints the peak RSS after each stage
(`resource.getrusage`, MB) and the CSR's bytes.

A dense bool users × items matrix would take 1M × 100k = 100 GB; the CSR takes
8 · (users + 1) + 4 · pairs bytes.

    .venv/bin/python benchmarks/bench_histories.py [--users N] [--items N] [--pairs N]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from dcnrank.data.encoding.interactions import Interactions
from dcnrank.models.interaction_history import InteractionHistory


def peak_mb() -> float:
    """Peak resident set size of this process so far, MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=20_000_000)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--embedding-dim", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"after imports: peak RSS {peak_mb():.0f} MB")
    rng = np.random.default_rng(0)
    began = time.perf_counter()
    users = torch.from_numpy(rng.integers(1, args.users + 1, args.pairs, dtype=np.int32))  # row 0 is OOV
    items = torch.from_numpy(rng.integers(1, args.items + 1, args.pairs, dtype=np.int32))
    print(f"random pairs ({args.pairs:,}, int32): peak RSS {peak_mb():.0f} MB")
    interactions = Interactions.from_pairs(users, items, args.users + 1, args.items + 1)
    del users, items
    built = time.perf_counter() - began
    print(
        f"Interactions.from_pairs: {len(interactions.members):,} distinct pairs, nbytes "
        f"{interactions.nbytes / 1e6:.0f} MB, {built:.1f} s; peak RSS {peak_mb():.0f} MB"
    )
    history = InteractionHistory(args.users + 1, args.items + 1, args.embedding_dim)
    history.set_history(interactions)
    generator = torch.Generator().manual_seed(0)
    owners = torch.randint(1, args.users + 1, (args.batch,), generator=generator)
    members = torch.randint(1, args.items + 1, (args.batch,), generator=generator)
    began = time.perf_counter()
    out = history(owners, members)
    out.sum().backward()
    step = time.perf_counter() - began
    print(
        f"forward + backward of {args.batch} rows: {tuple(out.shape)}, {step * 1e3:.0f} ms; peak RSS {peak_mb():.0f} MB"
    )
    began = time.perf_counter()
    transposed = interactions.transpose()
    print(
        f"transpose (an item history's CSR): nbytes {transposed.nbytes / 1e6:.0f} MB, "
        f"{time.perf_counter() - began:.1f} s; peak RSS {peak_mb():.0f} MB"
    )


if __name__ == "__main__":
    main()
