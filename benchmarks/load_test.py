"""A bounded load test of `dcnrank serve`: throughput, latency percentiles and errors of
`POST /rank` scoring every catalogue item for one user.

It starts the server itself (`python -m dcnrank serve --port 0`, on 127.0.0.1 only) on
the bundle given, sends at most `--requests` requests from `--concurrency` keep-alive
connections, stops at `--max-seconds` whatever is left, and stops the server. Each
request is `{"user_id": USER, "candidates": [every catalogue item], "top": 10}`, the
items read from the bundle's catalogue (1,682 movies for MovieLens 100K): that many rows
in one forward pass. `--user` is the user's id as the bundle's user column holds it (an
int, or text for a column of strings); an unknown user is scored through the OOV row.

Usage:
    dcnrank train --dataset movielens-100k train.epochs=1 --out /tmp/dcn
    python benchmarks/load_test.py /tmp/dcn [--requests 5000] [--concurrency 32] [--max-seconds 300]

Timings on a shared 2-core machine swing with whatever else runs, and client and
server share those cores: compare only runs of this script on the same machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

HOST = "127.0.0.1"  # never anything but this machine


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="the bundle folder to serve")
    parser.add_argument("--requests", type=int, default=5000, help="at most this many requests (default 5000)")
    parser.add_argument("--concurrency", type=int, default=32, help="connections in flight (default 32)")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="stop sending after this (default 300)")
    parser.add_argument("--user", default="42", help="the user id; digits are sent as an int (default 42)")
    parser.add_argument("--top", type=int, default=10, help="items per response (default 10)")
    parser.add_argument("--out", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()
    if args.requests < 1 or args.concurrency < 1 or args.max_seconds <= 0:
        parser.error("--requests, --concurrency and --max-seconds must be positive")

    items = _catalogue_items(Path(args.model))
    if not items:
        print(f"{args.model}: the bundle holds no catalogue to rank from (its spec has no user and item)",
              file=sys.stderr)  # fmt: skip
        return 2
    user: int | str = int(args.user) if args.user.lstrip("-").isdigit() else args.user
    command = [sys.executable, "-m", "dcnrank", "serve", "--model", args.model, "--host", HOST, "--port", "0"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        port = _read_port(server, timeout=120)
        body = json.dumps({"user_id": user, "candidates": items, "top": args.top})
        first = _post(_connect(port), body)
        if first[0] != 200:
            print(f"the first /rank failed: HTTP {first[0]} {first[1][:300]!r}", file=sys.stderr)
            return 1
        scored = json.loads(first[1])["candidates"]
        result = _load(port, body, args.requests, args.concurrency, args.max_seconds)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    latencies = sorted(result["latencies"])
    done = len(latencies)
    figures = {
        "model": str(Path(args.model)),
        "rows_per_request": scored,
        "requests": done,
        "errors": result["errors"],
        "concurrency": args.concurrency,
        "seconds": round(result["seconds"], 3),
        "requests_per_second": round(done / result["seconds"], 1) if result["seconds"] else 0.0,
        "rows_per_second": round(done * scored / result["seconds"]) if result["seconds"] else 0,
        "latency_ms": {name: round(_percentile(latencies, q) * 1000, 2) for name, q in
                       (("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("max", 1.0))},
        "stopped_by": result["stopped_by"],
        "cpu_count": os.cpu_count(),
        "torch_threads_env": os.environ.get("OMP_NUM_THREADS", "(unset)"),
    }  # fmt: skip
    print(
        f"/rank, {scored} items per request, {args.concurrency} connections: {done} requests in "
        f"{figures['seconds']} s ({figures['stopped_by']}) -> {figures['requests_per_second']} req/s "
        f"({figures['rows_per_second']:,} rows/s); latency p50 {figures['latency_ms']['p50']} ms, "
        f"p90 {figures['latency_ms']['p90']} ms, p99 {figures['latency_ms']['p99']} ms, "
        f"max {figures['latency_ms']['max']} ms; errors {figures['errors']}"
    )
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if result["errors"] == 0 else 1


def _catalogue_items(bundle: Path) -> list:
    """The item ids of the bundle's catalogue (`catalog.json`), in its order; [] without one."""
    path = bundle / "catalog.json"
    if not path.is_file():
        return []
    catalog = json.loads(path.read_text(encoding="utf-8"))
    return list(catalog["items"][catalog["item"]])


def _read_port(server: subprocess.Popen, timeout: float) -> int:
    """The port from the server's first line, `dcnrank serve: listening on http://HOST:PORT (...)`."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(server.stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=timeout)
    except queue.Empty:
        raise SystemExit(f"the server printed nothing in {timeout:.0f} s") from None
    if "listening on http://" not in line:
        raise SystemExit(f"the server did not start (exit {server.poll()}): {line!r}")
    address = line.split("listening on http://", 1)[1].split()[0]
    return int(address.rsplit(":", 1)[1])


def _connect(port: int) -> http.client.HTTPConnection:
    """A connection with Nagle's algorithm off: http.client sends a request's headers and
    body as two writes, and with Nagle on the body waits for the server's delayed ACK,
    adding ~40 ms to every request that is the client's cost, not the server's."""
    connection = http.client.HTTPConnection(HOST, port, timeout=60)
    connection.connect()
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def _post(connection: http.client.HTTPConnection, body: str) -> tuple[int, bytes]:
    connection.request("POST", "/rank", body=body.encode(), headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, response.read()


def _load(port: int, body: str, requests: int, concurrency: int, max_seconds: float) -> dict:
    """Send up to `requests` requests on `concurrency` threads, each its own connection."""
    budget = iter(range(requests))
    lock = threading.Lock()
    latencies: list[float] = []
    errors = [0]
    start = time.perf_counter()
    deadline = start + max_seconds
    timed_out = threading.Event()

    def worker() -> None:
        connection = _connect(port)
        while True:
            with lock:
                if next(budget, None) is None:
                    break
            if time.perf_counter() > deadline:
                timed_out.set()
                break
            sent = time.perf_counter()
            try:
                status, _ = _post(connection, body)
                ok = status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()
                connection = _connect(port)
            elapsed = time.perf_counter() - sent
            with lock:
                latencies.append(elapsed)
                errors[0] += not ok
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    return {
        "latencies": latencies,
        "errors": errors[0],
        "seconds": seconds,
        "stopped_by": "time limit" if timed_out.is_set() else "request count",
    }


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), round(q * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


if __name__ == "__main__":
    raise SystemExit(main())
