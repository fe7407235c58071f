"""Training throughput and memory on Criteo-layout tables larger than a run should hold
(issue 8; part of `make bench`).

For each table size (default 1M and 10M rows, written once by
examples/make_criteo_like.py into --workdir) it runs, each in a fresh process:

- **streamed, 1 process** (`data.stream`): the one pass over the file (rows/s), then
  `--steps` training steps of `--batch` rows read from the file through the shuffle
  buffer (rows/s), and the process's peak RSS;
- **streamed, 2 processes** (torchrun, DDP over gloo, each rank on its own row groups)
  on the largest table: rows/s of both ranks together and each rank's peak RSS;
- **in memory** on the smallest table: read and encode the whole table, then the same
  training steps from tensors — the reference for speed and memory.

Peak RSS must not grow with the rows when streaming; the in-memory path's does.
Timings on a shared 2-core machine swing with anything else running; compare the
numbers of one run of this command with each other.

    python benchmarks/bench_scale.py [--rows 1000000,10000000] [--steps 150] [--batch 4096]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "criteo_like.toml"


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class FirstSteps:
    """A `BatchStream` that stops after `steps` batches (a throughput sample of an epoch)."""

    def __init__(self, stream: Any, steps: int) -> None:
        self.stream, self.steps = stream, steps

    def num_batches(self, epoch: int) -> int:
        return min(self.steps, self.stream.num_batches(epoch))

    def batches(self, epoch: int, skip: int):  # noqa: ANN201
        for i, batch in enumerate(self.stream.batches(epoch, skip)):
            if i >= self.num_batches(epoch) - skip:
                return
            yield batch

    def fingerprint(self) -> dict[str, Any]:
        return self.stream.fingerprint()


def worker(args: argparse.Namespace) -> None:
    """One measurement in this process; prints one JSON line."""
    import torch

    from dcnrank.config import load_config
    from dcnrank.data.encoding.table_encoder import fit_and_encode
    from dcnrank.data.sources.table_readers import read_table
    from dcnrank.data.spec.feature_spec import load_feature_spec
    from dcnrank.data.streaming.streamed_table import StreamedTable
    from dcnrank.models.table_inputs import build_table_dcn
    from dcnrank.training.distributed import distributed_session
    from dcnrank.training.tasks import TaskTrainer

    spec = load_feature_spec(SPEC)
    # a CTR-sized DCN: 16-wide embeddings of 39 columns, one low-rank (64) cross layer, MLP 192-192
    config = load_config(overrides=[f"train.batch_size={args.batch}", "train.shuffle=true", "train.epochs=1",
                                    "model.embedding_dim=16", "model.projection_dim=64"])  # fmt: skip
    result: dict[str, Any] = {"mode": args.worker, "file": Path(args.file).name}
    with distributed_session() as world:
        began = time.perf_counter()
        if args.worker == "stream":
            table = StreamedTable.scan(spec, args.file, validation_max_rows=20_000)
            rows, sizes = table.rows, table.encoder.table_sizes
            data: Any = FirstSteps(table.training(args.batch, shuffle=True, shuffle_buffer=262_144, seed=0,
                                                  world=world), args.steps)  # fmt: skip
            labels = None
        else:
            whole = read_table(args.file)
            encoder, encoded = fit_and_encode(spec, whole)
            rows, sizes = whole.num_rows, encoder.table_sizes
            data, labels = encoded.features[: args.steps * args.batch], encoded.labels[: args.steps * args.batch]
        prepared = time.perf_counter() - began
        torch.manual_seed(0)
        model = build_table_dcn(config.model, spec, sizes)
        trainer = TaskTrainer(spec.task, config.train)
        began = time.perf_counter()
        history = trainer.fit(model, data, labels)
        seconds = time.perf_counter() - began
    steps = args.steps
    result.update(
        rows=rows,
        prepare_seconds=round(prepared, 2),
        prepare_rows_per_s=round(rows / prepared),
        train_rows=steps * args.batch,
        train_seconds=round(seconds, 2),
        train_rows_per_s=round(steps * args.batch / seconds),
        loss=round(history.epochs[-1]["loss"], 4),
        peak_rss_mb=round(peak_rss_mb()),
        rank=world.rank,
        ranks=world.size,
    )
    print("RESULT " + json.dumps(result), flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(mode: str, file: Path, args: argparse.Namespace, ranks: int = 1) -> list[dict[str, Any]]:
    """Run one worker (or `ranks` of them under torchrun) and collect their RESULT lines."""
    worker_args = [__file__, "--worker", mode, "--file", str(file), "--steps", str(args.steps),
                   "--batch", str(args.batch)]  # fmt: skip
    env = dict(os.environ)
    if ranks > 1:
        env.update(OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks), "--nnodes", "1",
                   "--master_addr", "127.0.0.1", "--master_port", str(free_port()), *worker_args]  # fmt: skip
    else:
        command = [sys.executable, *worker_args]
    began = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - began
    if proc.returncode != 0:
        raise SystemExit(f"{mode} on {file.name} ({ranks} ranks) failed:\n{proc.stderr[-3000:]}")
    results = [json.loads(line[len("RESULT ") :]) for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    for r in results:
        r["wall_seconds"] = round(wall, 1)
    return results


def ensure_table(rows: int, workdir: Path) -> Path:
    path = workdir / f"criteo_like_{rows}.parquet"
    if not path.exists():
        print(f"writing {rows:,} rows to {path} ...", flush=True)
        proc = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "make_criteo_like.py"), "--rows", str(rows), "--out", str(path)],
            capture_output=True, text=True,
        )  # fmt: skip
        if proc.returncode != 0:
            raise SystemExit(proc.stderr)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1000000,10000000", help="table sizes, comma-separated")
    parser.add_argument("--steps", type=int, default=150, help="training steps measured per run")
    parser.add_argument("--batch", type=int, default=4096, help="global batch rows")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "dcnrank-bench-scale")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--worker", choices=("stream", "memory"), help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    sizes = sorted(int(r) for r in args.rows.split(","))
    args.workdir.mkdir(parents=True, exist_ok=True)
    files = {rows: ensure_table(rows, args.workdir) for rows in sizes}
    results: list[dict[str, Any]] = []
    results += measure("memory", files[sizes[0]], args)
    for rows in sizes:
        results += measure("stream", files[rows], args)
    results += measure("stream", files[sizes[-1]], args, ranks=2)
    print()
    print(f"{'path':<22} {'rows':>11} {'pass rows/s':>12} {'train rows/s':>13} {'peak RSS MB':>12}")
    by_run: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
    for r in results:
        by_run.setdefault((r["mode"], r["rows"], r["ranks"]), []).append(r)
    for (mode, rows, ranks), group in by_run.items():
        name = "in memory" if mode == "memory" else f"streamed, {ranks} process{'es' if ranks > 1 else ''}"
        # ranks run in parallel: the group's throughput is the global batch rows over the slowest rank's time
        train = group[0]["train_rows"] / max(g["train_seconds"] for g in group)
        rss = "/".join(str(g["peak_rss_mb"]) for g in sorted(group, key=lambda g: g["rank"]))
        print(f"{name:<22} {rows:>11,} {group[0]['prepare_rows_per_s']:>12,} {train:>13,.0f} {rss:>12}")
    stream_1 = [r for r in results if r["mode"] == "stream" and r["ranks"] == 1]
    if len(stream_1) > 1:
        growth = stream_1[-1]["peak_rss_mb"] / stream_1[0]["peak_rss_mb"]
        print(f"\npeak RSS streaming {stream_1[-1]['rows']:,} rows / {stream_1[0]['rows']:,} rows: ×{growth:.2f}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
