"""A bounded soak of `dcnrank serve`: a real server (uvicorn on a thread, 127.0.0.1, the
default connection limits) around a tiny in-memory bundle takes 2,000 requests from 64
kept-alive connections — valid `/rank` and `/predict`, unknown users, malformed JSON,
wrong types, bodies over the cap, strings over the limit — and must answer each with its
expected status and an error JSON for the bad ones (no 5xx, no dropped connection), with
its RSS growing by less than 150 MB after warm-up. Run with `-s` for the figures."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import pytest
from bundle_support import ROW, memory_bundle
from test_serve_hardening import memory_mb

from dcnrank.limits import MAX_STRING_CHARS
from dcnrank.serve import MAX_BODY_BYTES, BackgroundServer, create_app

REQUESTS = 2_000
CONCURRENCY = 64
WARM_UP = 200  # requests before the RSS baseline
MAX_GROWTH_MB = 150
MAX_SECONDS = 120  # the whole run stops by then, whatever is left
REQUEST_TIMEOUT = 30


def _json(body: object) -> bytes:
    return json.dumps(body).encode()


# (name, path, body, expected status); request i is KINDS[i % len(KINDS)]
KINDS: list[tuple[str, str, bytes, int]] = [
    ("rank", "/rank", _json({"user_id": 1, "candidates": [1, 2, 3], "top": 2}), 200),
    ("predict", "/predict", _json({"rows": [ROW, {**ROW, "item_id": 3}]}), 200),
    ("unknown user", "/rank", _json({"user_id": 424242, "user": {"zip": "99999"}, "candidates": [1, 2]}), 200),
    ("rank", "/rank", _json({"user": {"occupation": "writer"}, "candidates": [3, 1]}), 200),
    ("malformed JSON", "/rank", b'{"user_id": 1,', 400),
    ("wrong type", "/rank", _json({"user_id": "1", "candidates": [1]}), 422),
    ("wrong type", "/predict", _json({"rows": [{**ROW, "item_id": 1.5}]}), 422),
    ("over-long string", "/rank", _json({"user": {"zip": "9" * 100_000}, "candidates": [1]}), 422),
    ("over-long string", "/predict", _json({"rows": [{**ROW, "zip": "x" * (MAX_STRING_CHARS + 1)}]}), 422),
    ("unknown column", "/predict", _json({"rows": [{**ROW, "genre": "x"}]}), 422),
    ("rank", "/rank", _json({"user_id": 2, "candidates": [2]}), 200),
    ("predict", "/predict", _json({"rows": [ROW] * 50}), 200),
    ("rank", "/rank", _json({"user_id": 1}), 200),
    ("predict", "/predict", _json({"rows": [{**ROW, "user_id": 7}]}), 200),
    ("repeated candidate", "/rank", _json({"user_id": 1, "candidates": [1, 1]}), 422),
    ("oversized body", "/predict", b" " * (MAX_BODY_BYTES + 1), 413),
]  # fmt: skip


class Outcomes:
    """What came back, per request: status and latency; anything unexpected, described."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.unexpected: list[str] = []
        self.done = 0


async def _send(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, body: bytes
) -> tuple[int, dict[str, str], bytes]:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: soak\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    status_line = await reader.readuntil(b"\r\n")
    headers = {}
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    content = await reader.readexactly(int(headers["content-length"]))
    return int(status_line.split()[1]), headers, content


async def _worker(port: int, indices: list[int], outcomes: Outcomes, stop_at: float) -> None:
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    for i in indices:
        if time.monotonic() > stop_at:
            return
        name, path, body, expected = KINDS[i % len(KINDS)]
        start = time.perf_counter()
        try:
            if connection is None:
                connection = await asyncio.open_connection("127.0.0.1", port)
            status, headers, content = await asyncio.wait_for(_send(*connection, path, body), REQUEST_TIMEOUT)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as error:
            outcomes.unexpected.append(f"request {i} ({name}): {type(error).__name__}: {error}")
            if connection is not None:
                connection[1].close()
            connection = None
            continue
        outcomes.latencies.append(time.perf_counter() - start)
        outcomes.done += 1
        problem = None
        if status != expected:
            problem = f"status {status}, expected {expected}: {content[:200]!r}"
        elif status != 200:
            answer = json.loads(content)
            if not (isinstance(answer.get("error"), str) and answer.get("errors")):
                problem = f"no error JSON: {content[:200]!r}"
        if problem:
            outcomes.unexpected.append(f"request {i} ({name}): {problem}")
        if headers.get("connection", "").lower() == "close":
            connection[1].close()
            connection = None
    if connection is not None:
        connection[1].close()


async def _soak(port: int, indices: list[int], outcomes: Outcomes, stop_at: float) -> None:
    workers = [indices[k::CONCURRENCY] for k in range(CONCURRENCY)]
    await asyncio.gather(*(_worker(port, share, outcomes, stop_at) for share in workers))


class RssSampler(threading.Thread):
    """Samples this process's VmRSS every 20 ms until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.02):
            self.samples.append(memory_mb("VmRSS"))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc (Linux)")
def test_soak_mixed_traffic_all_expected_and_bounded_memory():
    with BackgroundServer(create_app(memory_bundle())) as server:  # the default ConnectionLimits
        port = int(server.url.rsplit(":", 1)[1])
        outcomes = Outcomes()
        stop_at = time.monotonic() + MAX_SECONDS
        asyncio.run(_soak(port, list(range(WARM_UP)), outcomes, stop_at))  # warm-up
        sampler = RssSampler()
        start_rss = memory_mb("VmRSS")
        sampler.start()
        start = time.perf_counter()
        asyncio.run(_soak(port, list(range(WARM_UP, REQUESTS)), outcomes, stop_at))
        elapsed = time.perf_counter() - start
        sampler.stopped.set()
        sampler.join()
        end_rss = memory_mb("VmRSS")
    peak_rss = max([start_rss, end_rss, *sampler.samples])
    measured = outcomes.latencies[WARM_UP:]
    print(
        f"\nsoak: {REQUESTS - WARM_UP} requests (after {WARM_UP} warm-up) at concurrency {CONCURRENCY} in "
        f"{elapsed:.1f} s: {(REQUESTS - WARM_UP) / elapsed:.0f} requests/s; latency p50 "
        f"{percentile(measured, 0.5) * 1000:.1f} ms, p99 {percentile(measured, 0.99) * 1000:.1f} ms; "
        f"RSS start {start_rss:.0f} MB, peak {peak_rss:.0f} MB, end {end_rss:.0f} MB; "
        f"{len(outcomes.unexpected)} unexpected"
    )
    assert outcomes.unexpected == []
    assert outcomes.done == REQUESTS, f"only {outcomes.done} of {REQUESTS} requests within {MAX_SECONDS} s"
    assert peak_rss - start_rss < MAX_GROWTH_MB
