"""`make bench-peers`: the same DCN-V2 trained in dcnrank, Keras-RS, TorchRec, DeepCTR-Torch and
FuxiCTR on one pre-encoded Criteo-layout table, printed as one comparison table.

In order, in one command:

1. each library's virtual environment, `.peers/<library>/` (made on first use with
   `python3 -m venv` and pinned versions; a stamp file skips it later); dcnrank uses the
   project's `.venv`;
2. the table: `examples/make_criteo_like.py --rows N`, encoded once into per-column ids
   under `.peers/data/criteo_like_N/` (reused when present; `encode.py`);
3. the machine's matmul peak (fp32, bf16) before the runs;
4. every (seed, library, variant) as its own subprocess, one after another, each after
   checking that the machine is quiet (others using < 10% of the CPU; waiting up to
   `--quiet-wait` seconds, then going on with a warning in the table);
5. the matmul peak again, the table, and `--json`.

A library whose environment or run fails is a "failed" row with the error's last line; the
others still run.

Usage:
    .venv/bin/python benchmarks/peers/bench_peers.py [--rows 1000000] [--seeds 0 1]
        [--libraries dcnrank keras_rs torchrec deepctr fuxictr]
        [--dcnrank-variants fp32 bf16:train.precision=bf16] [--threads N] [--json OUT]

A smoke test (minutes, on a busy machine): `--rows 20000 --seeds 0 --threads 1 --quiet-wait 0`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import train_flops_per_row
from encode import COLUMNS, ensure_data

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PEERS = ROOT / ".peers"
PROJECT_PYTHON = ROOT / ".venv" / "bin" / "python"
TORCH = "torch==2.13.0"  # the CPU build lies beside pip; every venv installs it first and pins it
STAMP = ".peers-installed"
QUIET_BUSY = 0.10  # the CPU share others may use before a run
FLOP_PER_ROW = train_flops_per_row(len(COLUMNS))


@dataclass(frozen=True)
class Library:
    """A library under test: its runner script, the pip installs of its venv (in order; empty
    for dcnrank, which runs in the project's `.venv`) and extra environment variables."""

    name: str
    runner: str
    installs: tuple[tuple[str, ...], ...] = ()
    env: dict[str, str] = field(default_factory=dict)


LIBRARIES: dict[str, Library] = {
    "dcnrank": Library("dcnrank", "run_dcnrank.py"),
    "keras_rs": Library(
        "keras_rs",
        "run_keras_rs.py",
        (("keras==3.15.1", "keras-rs==0.4.0", "jax==0.10.2", "jaxlib==0.10.2"),),
        {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"},
    ),
    "torchrec": Library(
        "torchrec",
        "run_torchrec.py",
        (
            (TORCH,),
            ("fbgemm-gpu-cpu==1.8.0",),  # 1.9.0 does not load with torch 2.13.0
            ("--no-deps", "torchrec==1.9.2"),  # its metadata asks for fbgemm-gpu, the CUDA build
            ("tensordict==0.15.3", "torchmetrics==1.0.3", "tqdm", "pyre-extensions==0.0.32"),
        ),
    ),
    "deepctr": Library("deepctr", "run_deepctr.py", ((TORCH,), ("deepctr-torch==0.3.0", "requests"))),
    "fuxictr": Library("fuxictr", "run_fuxictr.py", ((TORCH,), ("fuxictr==2.3.10",))),
}
DEFAULT_VARIANTS = ("fp32", "bf16:train.precision=bf16")


class SetupError(RuntimeError):
    """A venv could not be made; the message is the failing step's last line of output."""


# --------------------------------------------------------------------------- environments


def last_line(text: str) -> str:
    """The last non-empty line of `text` (`"(no output)"` when there is none)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def venv_python(library: Library, peers: Path = PEERS) -> Path:
    """The interpreter a library's runner uses."""
    return PROJECT_PYTHON if not library.installs else peers / library.name / "bin" / "python"


def ensure_venv(library: Library, peers: Path = PEERS, log: Callable[[str], None] = print) -> Path:
    """Make (or reuse) the library's venv; its interpreter.

    The stamp file holds the install steps; a venv whose stamp matches is reused as it is.
    Every install is constrained to `torch==2.13.0` (`constraints.txt`), so pip never swaps
    in another torch. pip's output goes to `.peers/<library>/install.log`.

    Raises:
        SetupError: naming the failed step and its last line of output.
    """
    python = venv_python(library, peers)
    if not library.installs:
        if not python.is_file():
            raise SetupError(f"{python} is missing: run `make setup` first")
        return python
    folder = peers / library.name
    stamp = folder / STAMP
    wanted = json.dumps([list(step) for step in library.installs])
    if stamp.is_file() and stamp.read_text() == wanted and python.is_file():
        return python
    log(f"setting up {folder} (pip's output: {folder / 'install.log'}) ...")
    folder.mkdir(parents=True, exist_ok=True)
    constraints = folder / "constraints.txt"
    constraints.write_text(TORCH + "\n")
    steps = [] if python.is_file() else [["python3", "-m", "venv", str(folder)]]
    steps.append([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    steps += [[str(python), "-m", "pip", "install", "-c", str(constraints), *install] for install in library.installs]
    log_file = folder / "install.log"
    with open(log_file, "w") as output:
        for step in steps:
            output.write("$ " + " ".join(step) + "\n")
            output.flush()
            if subprocess.run(step, stdout=output, stderr=subprocess.STDOUT).returncode != 0:
                output.flush()
                raise SetupError(f"`{' '.join(step)}` failed: {last_line(log_file.read_text())}")
    stamp.write_text(wanted)
    return python


# --------------------------------------------------------------------------- the machine


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from /proc/stat (idle and iowait are not busy)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def busy_fraction(seconds: float = 1.0) -> float:
    """The share of all CPUs busy over `seconds` while this process sleeps (others' load)."""
    busy0, total0 = cpu_times()
    time.sleep(seconds)
    busy1, total1 = cpu_times()
    return (busy1 - busy0) / max(1, total1 - total0)


def wait_until_quiet(max_wait: float, threshold: float = QUIET_BUSY) -> tuple[bool, float]:
    """Sample the CPU (1 s at a time) until others use < `threshold` of it or `max_wait` seconds
    have passed; `(quiet, the last busy share)`."""
    deadline = time.monotonic() + max_wait
    while True:
        busy = busy_fraction()
        if busy < threshold or time.monotonic() >= deadline:
            return busy < threshold, busy


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def cpu_set(threads: int | None) -> list[int]:
    """The CPUs the runs may use: all of this process's, or the first `threads` of them.

    Raises:
        ValueError: if `threads` is not between 1 and the number of CPUs.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if threads is None:
        return cpus
    if not 1 <= threads <= len(cpus):
        raise ValueError(f"--threads must be between 1 and {len(cpus)}. Received: {threads}")
    return cpus[:threads]


def child_env(library: Library, cpus: list[int], all_cpus: int) -> dict[str, str]:
    """The runner's environment: OMP/MKL thread counts unset (or set to `--threads`), the
    library's own variables, no PYTHONPATH for the peers' venvs."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    if len(cpus) < all_cpus:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(len(cpus))
    if library.installs:
        env.pop("PYTHONPATH", None)
    env.update(library.env)
    return env


def matmul_peak(cpus: list[int]) -> dict[str, Any]:
    """`matmul_peak.py`'s fp32 and bf16 GFLOP/s on `cpus` (in the project's `.venv`)."""
    done = subprocess.run(
        [str(PROJECT_PYTHON), str(HERE / "matmul_peak.py")],
        capture_output=True,
        text=True,
        env=child_env(LIBRARIES["dcnrank"], cpus, len(os.sched_getaffinity(0))),
        preexec_fn=lambda: os.sched_setaffinity(0, cpus),
    )
    if done.returncode != 0:
        raise RuntimeError(f"matmul_peak.py failed: {last_line(done.stderr)}")
    return json.loads(last_line(done.stdout))


# --------------------------------------------------------------------------- runs


@dataclass(frozen=True)
class Variant:
    """A named run of a library: `name` and the runner's `--set` items (dcnrank only)."""

    library: str
    name: str
    sets: tuple[str, ...] = ()


def parse_variant(text: str) -> Variant:
    """`"bf16:train.precision=bf16"` → the dcnrank variant `bf16` with that set; sets are
    separated by commas; a bare name has none.

    Raises:
        ValueError: on an empty name or a set without `=`.

    Example:
        >>> parse_variant("sparse:train.embedding_updates=sparse,train.precision=bf16").sets
        ('train.embedding_updates=sparse', 'train.precision=bf16')
    """
    name, _, sets = text.partition(":")
    items = tuple(s.strip() for s in sets.split(",") if s.strip())
    if not name.strip() or any("=" not in s for s in items):
        raise ValueError(f"a variant is NAME or NAME:train.KEY=VALUE[,train.KEY=VALUE...]. Received: {text!r}")
    return Variant("dcnrank", name.strip(), items)


def variants(libraries: Sequence[str], dcnrank_variants: Sequence[str]) -> list[Variant]:
    """Every (library, variant) to run, in order: dcnrank's variants, then one run of each peer."""
    out: list[Variant] = []
    for name in libraries:
        if name == "dcnrank":
            out += [parse_variant(v) for v in dcnrank_variants]
        else:
            out.append(Variant(name, "default"))
    return out


def parse_record(stdout: str) -> dict[str, Any]:
    """The runner's record: the last stdout line that is a JSON object with a `library` key.

    Raises:
        ValueError: if there is none.
    """
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and "library" in record:
                return record
    raise ValueError("the runner printed no JSON record")


def run_one(
    variant: Variant, seed: int, python: Path, data: Path, cpus: list[int], timeout: float, logs: Path
) -> dict[str, Any]:
    """One runner subprocess; its record, or `{"failed": last line}`. stderr goes to `logs/`."""
    library = LIBRARIES[variant.library]
    command = [str(python), str(HERE / library.runner), "--data", str(data), "--seed", str(seed)]
    if variant.sets:
        command += ["--set", *variant.sets]
    logs.mkdir(parents=True, exist_ok=True)
    log_file = logs / f"{variant.library}-{variant.name}-seed{seed}.log"
    began = time.perf_counter()
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=child_env(library, cpus, len(os.sched_getaffinity(0))),
            preexec_fn=lambda: os.sched_setaffinity(0, cpus),
        )
    except subprocess.TimeoutExpired:
        return {"failed": f"timed out after {timeout:.0f} s"}
    log_file.write_text(done.stderr)
    if done.returncode != 0:
        return {"failed": last_line(done.stderr or done.stdout)}
    try:
        record = parse_record(done.stdout)
    except ValueError as error:
        return {"failed": str(error)}
    record["process_s"] = time.perf_counter() - began
    return record


# --------------------------------------------------------------------------- the table


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values)


def std(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(runs: list[dict[str, Any]], peak: dict[str, float]) -> list[dict[str, Any]]:
    """One row per (library, variant): means over seeds, × matmul peak, × best peer.

    × matmul peak = rows/s × FLOP per training row / peak FLOP/s of the run's precision
    (fp32 or bf16). × best peer = rows/s / the fastest peer library's rows/s (not dcnrank).
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run["library"], run["variant"]), []).append(run)
    rows = []
    for (library, name), group in groups.items():
        ok = [r for r in group if "failed" not in r]
        row: dict[str, Any] = {"library": library, "variant": name, "seeds": [r["seed"] for r in group]}
        if not ok:
            row["failed"] = group[0]["failed"]
            rows.append(row)
            continue
        rate = mean([r["steady_rows_per_s"] for r in ok])
        precision = ok[0].get("precision") or "fp32"
        row.update(
            rows_per_s=rate,
            precision=precision,
            of_peak=rate * FLOP_PER_ROW / (peak[precision] * 1e9) if peak.get(precision) else None,
            epoch_s=mean([r["epoch_s"] for r in ok]),
            first_step_s=mean([r["first_step_s"] for r in ok]),
            compile_s=mean([r["compile_s"] for r in ok]) if ok[0].get("compile_s") is not None else None,
            auc_mean=mean([r["test_auc"] for r in ok]),
            auc_std=std([r["test_auc"] for r in ok]),
            logloss=mean([r["test_logloss"] for r in ok]),
            inference_rows_per_s=mean([r["inference_rows_per_s"] for r in ok]),
            peak_rss_mb=max(r["peak_rss_mb"] for r in ok),
            parameters=ok[0]["parameters"],
            busy=any(not r.get("quiet", True) for r in group),
            failed_seeds=[r["seed"] for r in group if "failed" in r],
        )
        rows.append(row)
    peers = [r["rows_per_s"] for r in rows if r["library"] != "dcnrank" and "rows_per_s" in r]
    for row in rows:
        row["of_best_peer"] = row["rows_per_s"] / max(peers) if peers and "rows_per_s" in row else None
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """The comparison as a Markdown table; `!` marks rows measured on a busy machine."""
    header = (
        "library / variant", "rows/s", "× matmul peak", "× best peer", "epoch s", "first step s",
        "test AUC", "logloss", "inference rows/s", "peak RSS MB", "parameters",
    )  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        label = f"{row['library']} / {row['variant']}" + (" !" if row.get("busy") else "")
        if "failed" in row:
            lines.append(f"| {label} | failed: {row['failed']} |" + " |" * (len(header) - 2))
            continue
        cells = (
            label,
            f"{row['rows_per_s']:,.0f}",
            f"{row['of_peak']:.2f}" if row["of_peak"] is not None else "",
            f"{row['of_best_peer']:.2f}" if row["of_best_peer"] is not None else "",
            f"{row['epoch_s']:.1f}",
            f"{row['first_step_s']:.2f}" + (f" (compile {row['compile_s']:.1f})" if row["compile_s"] else ""),
            f"{row['auc_mean']:.4f} ± {row['auc_std']:.4f}",
            f"{row['logloss']:.4f}",
            f"{row['inference_rows_per_s']:,.0f}",
            f"{row['peak_rss_mb']:,.0f}",
            f"{row['parameters']:,}",
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def busy_warning(runs: list[dict[str, Any]], max_wait: float) -> str:
    """A loud paragraph when some run started on a busy machine (empty otherwise)."""
    busy = [r for r in runs if not r.get("quiet", True)]
    if not busy:
        return ""
    worst = max(r["busy_before"] for r in busy)
    return (
        "!" * 78 + "\n"
        f"WARNING: {len(busy)} of {len(runs)} runs started while other processes used up to {worst:.0%} of the CPU\n"
        f"(after waiting up to {max_wait:.0f} s for < {QUIET_BUSY:.0%}). Rows marked ! are not comparable.\n" + "!" * 78
    )


# --------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="table rows, 80%% trained on (default: 1000000)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds per library (default: 0 1)")
    parser.add_argument(
        "--libraries", nargs="+", default=list(LIBRARIES), choices=list(LIBRARIES), help="default: all five"
    )
    parser.add_argument(
        "--dcnrank-variants",
        nargs="+",
        default=list(DEFAULT_VARIANTS),
        metavar="NAME[:train.KEY=VALUE,...]",
        help=f"dcnrank runs (default: {' '.join(DEFAULT_VARIANTS)})",
    )
    parser.add_argument("--threads", type=int, default=None, help="CPUs per run (default: all)")
    parser.add_argument(
        "--quiet-wait", type=float, default=60.0, help="seconds to wait for a quiet machine per run (default: 60)"
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per run before it fails (default: 3600)")
    parser.add_argument("--cache", type=Path, default=PEERS / "data", help="encoded tables (default: .peers/data)")
    parser.add_argument("--json", type=Path, default=None, help="write every run, the peaks and the table here")
    return parser


def setup(libraries: Sequence[str]) -> tuple[dict[str, Path], dict[str, str]]:
    """Every library's interpreter, and the setup error of each library that has none."""
    pythons, failures = {}, {}
    for name in libraries:
        try:
            pythons[name] = ensure_venv(LIBRARIES[name])
        except (SetupError, OSError) as error:
            failures[name] = str(error)
            print(f"{name}: setup failed: {error}", file=sys.stderr)
    return pythons, failures


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.rows < 10:
        raise SystemExit(f"bench_peers.py: error: --rows must be at least 10. Received: {args.rows}")
    try:
        cpus = cpu_set(args.threads)
        plan = variants(args.libraries, args.dcnrank_variants)
    except ValueError as error:
        raise SystemExit(f"bench_peers.py: error: {error}") from None
    pythons, setup_failures = setup(args.libraries)
    data = ensure_data(args.cache, args.rows, str(PROJECT_PYTHON))
    print(f"data: {data}  ({args.rows:,} rows; FLOP per training row {FLOP_PER_ROW:,})", flush=True)

    peak_before = matmul_peak(cpus)
    print(f"matmul peak before: {peak_before['gflops']}", flush=True)
    runs: list[dict[str, Any]] = []
    for seed in args.seeds:
        for variant in plan:
            base = {"library": variant.library, "variant": variant.name, "seed": seed, "sets": list(variant.sets)}
            if variant.library in setup_failures:
                runs.append({**base, "failed": setup_failures[variant.library]})
                continue
            quiet, busy = wait_until_quiet(args.quiet_wait)
            print(f"run {variant.library}/{variant.name} seed {seed} (others busy {busy:.0%}) ...", flush=True)
            record = run_one(variant, seed, pythons[variant.library], data, cpus, args.timeout, PEERS / "logs")
            runs.append({**record, **base, "quiet": quiet, "busy_before": busy})
            status = record.get("failed") or f"{record['steady_rows_per_s']:,.0f} rows/s, {record['process_s']:.0f} s"
            print(f"  {status}", flush=True)
    peak_after = matmul_peak(cpus)
    print(f"matmul peak after: {peak_after['gflops']}", flush=True)

    peak = {k: max(peak_before["gflops"][k], peak_after["gflops"][k]) for k in peak_before["gflops"]}
    table = summarise(runs, peak)
    print()
    print(format_table(table))
    warning = busy_warning(runs, args.quiet_wait)
    if warning:
        print(warning)
    print(
        f"\nrows/s: a full batch over the median steady step (steps after the first 5); × matmul peak: rows/s × "
        f"{FLOP_PER_ROW:,} FLOP / the matmul peak in the run's precision, the higher of the measurements before "
        f"and after ({', '.join(f'{k} {v:.0f}' for k, v in peak.items())} GFLOP/s on {len(cpus)} CPU(s))."
    )
    if args.json:
        report = {
            "command": sys.argv,
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": {"cpu": cpu_model(), "cpus": len(cpus), "python": platform.python_version()},
            "rows": args.rows,
            "seeds": args.seeds,
            "flop_per_train_row": FLOP_PER_ROW,
            "matmul_peak": {"before": peak_before, "after": peak_after, "used_gflops": peak},
            "runs": runs,
            "table": table,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0 if all("failed" not in r for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
