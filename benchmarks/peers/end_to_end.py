"""`dcnrank train --data` end to end against training alone (issue 16).

The peer benchmark's table file (`.peers/data/criteo_like_<rows>/criteo_like.parquet`, written
by bench_peers.py) and model, two ways, each in a fresh process, one after the other:

- **in memory** (the reference): `run_dcnrank.py` on the pre-encoded arrays (ids.npy), one
  epoch over the first 80% of the rows;
- **end to end**: `dcnrank train --data criteo_like.parquet --spec end_to_end_spec.toml
  --config end_to_end.toml` (every column categorical, min count 3; the same model, batch,
  learning rate; a seeded random 20% held out), reading, fitting the vocabularies,
  encoding, training one epoch, validating and writing the bundle.

It prints each one's wall seconds, training-epoch seconds and peak RSS (the child's
`ru_maxrss`), and the ratios the issue sets goals on: end-to-end wall / its own epoch
(≤ 1.15) and end-to-end peak RSS / the in-memory run's (≤ 1.1).

    .venv/bin/python benchmarks/peers/end_to_end.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


# runs the command and reports its own children's peak RSS (KB) as its last stderr line, so
# that each measured process has a figure of its own (RUSAGE_CHILDREN keeps the largest yet)
WRAPPER = (
    "import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(code)"
)


def child(command: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MB, stdout) of `command` in a fresh process."""
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", WRAPPER, *command], capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return wall, int(done.stderr.strip().splitlines()[-1]) / 1024, done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    data = ROOT / ".peers" / "data" / f"criteo_like_{args.rows}"
    if not (data / "criteo_like.parquet").exists():
        raise SystemExit(f"{data}: no table; run benchmarks/peers/bench_peers.py --rows {args.rows} first")
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="dcnrank-e2e-") as folder:
        command = [python, "-m", "dcnrank", "train", "--data", str(data / "criteo_like.parquet"),
                   "--spec", str(HERE / "end_to_end_spec.toml"), "--config", str(HERE / "end_to_end.toml"),
                   "--json", "--out", str(Path(folder) / "bundle")]  # fmt: skip
        wall, rss, out = child(command)
        metrics = json.loads(Path(folder, "bundle", "metrics.json").read_text())
    epoch = sum(e["seconds"] for e in metrics["history"]) if "history" in metrics else float("nan")
    ref_wall, ref_rss, ref_out = child([python, str(HERE / "run_dcnrank.py"), "--data", str(data), "--seed", "0"])
    record = json.loads(ref_out.strip().splitlines()[-1])
    print(f"end to end:  {wall:6.1f} s wall, {epoch:6.1f} s training epoch(s), peak RSS {rss:7,.0f} MB"
          f"  -> wall / epoch {wall / epoch:.2f}")  # fmt: skip
    print(f"in memory:   {ref_wall:6.1f} s wall, {record['epoch_s']:6.1f} s epoch, peak RSS {ref_rss:7,.0f} MB")
    print(f"end-to-end peak RSS / in-memory: {rss / ref_rss:.2f}")
    print(json.dumps({"validation": json.loads(out).get("validation"), "in_memory_test_auc": record.get("test_auc")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
