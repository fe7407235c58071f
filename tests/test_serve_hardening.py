"""`dcnrank serve` against hostile or broken clients: strings longer than
`MAX_STRING_CHARS` refused before any lookup (and without memory in proportion to
them), slow or idle sockets closed by the read deadlines, a connection cap, and a busy
port or an unresolvable host as a one-line error of the real entry point."""

from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bundle_support import ROW, memory_bundle

from dcnrank.bundle import Bundle
from dcnrank.bundle.ranking import RankingError, rank_items
from dcnrank.cli.serve import positive_int, seconds
from dcnrank.data.encoding.table_error import TableDataError
from dcnrank.limits import MAX_STRING_CHARS
from dcnrank.serve import BackgroundServer, ConnectionLimits, bind_socket, create_app
from dcnrank.serve.protocol import GuardedProtocol
from dcnrank.serve.server import make_server


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    """The shared spec in memory, with its 50 zip codes: before the fix, looking up one long
    value promoted the whole zip vocabulary to its width (50 x 3,000,000 characters x 4 bytes = 600 MB)."""
    return memory_bundle()


@pytest.fixture(scope="module")
def client(bundle):
    from fastapi.testclient import TestClient

    return TestClient(create_app(bundle))


# ------------------------------------------------------------------ over-long strings


def peak_rss_reset() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS; False where Linux does not let us."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def memory_mb(key: str) -> float:
    """`VmRSS` (now) or `VmHWM` (peak since the last reset) of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {key} in /proc/self/status")


LONG = 3_000_000  # characters: a 3 MB body, under the 4 MiB cap
TOO_LONG = [
    ("/rank", {"user": {"zip": "9" * LONG}, "candidates": [1, 2]}, "user.zip"),
    ("/rank", {"user_id": 1, "user": {"occupation": "x" * LONG}, "candidates": [1]}, "user.occupation"),
    ("/rank", {"user_id": 1, "context": {"device": "x" * LONG}}, "context.device"),
    ("/predict", {"rows": [ROW, {**ROW, "zip": "9" * LONG}]}, "rows[1].zip"),
    ("/predict", {"rows": [{**ROW, "genres": ["a", "9" * LONG]}]}, "rows[0].genres"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body", "field"), TOO_LONG)
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc (Linux)")
def test_a_string_over_the_limit_is_a_422_before_any_lookup_in_bounded_memory(client, path, body, field):
    raw = json.dumps(body).encode()
    client.post("/rank", json={"user_id": 1, "candidates": [1]})  # warm
    exact = peak_rss_reset()
    before = memory_mb("VmRSS")
    response = client.post(path, content=raw, headers={"content-type": "application/json"})
    grown = memory_mb("VmHWM" if exact else "VmRSS") - before
    assert response.status_code == 422
    answer = response.json()
    message = f"String should have at most {MAX_STRING_CHARS} characters. Received: a str of {LONG} characters"
    # a multi-hot value may be a list or a str: each alternative says why it does not fit
    assert any(e["field"].startswith(field) and e["message"] == message for e in answer["errors"]), answer
    assert answer["errors"][0]["field"].startswith(field)
    # The body itself (3 MB), its JSON and the request's copies fit well within this;
    # a lookup as wide as the string took 600 MB here, 9.5 GB on MovieLens.
    assert grown < 100, f"the request took {grown:.0f} MB"


def test_a_string_at_the_limit_is_served(client):
    at_limit = "9" * MAX_STRING_CHARS
    response = client.post("/rank", json={"user": {"zip": at_limit}, "candidates": [1, 2]})
    assert response.status_code == 200
    assert response.json()["unknown"] == {"zip": [at_limit]}
    response = client.post("/predict", json={"rows": [{**ROW, "occupation": at_limit}]})
    assert response.status_code == 200 and response.json()["unknown"] == {"occupation": [at_limit]}


def test_a_feature_name_over_the_limit_is_a_422_with_a_short_field(client):
    key = "k" * (MAX_STRING_CHARS + 1)
    response = client.post("/predict", json={"rows": [{**ROW, key: 1}]})
    assert response.status_code == 422
    answer = response.json()
    field = answer["errors"][0]["field"]
    assert field == "rows[0]." + "k" * 100 + "…"
    assert answer["errors"][0]["message"] == "Extra inputs are not permitted. Received: 1"


def test_an_unknown_field_with_a_long_name_is_echoed_cut_short(client):
    response = client.post("/rank", json={"user": {"x" * 300: 1}})
    assert response.status_code == 422
    field = response.json()["errors"][0]["field"]
    assert field == "user." + "x" * 100 + "…"


def test_the_ranking_core_and_predict_refuse_a_string_over_the_limit(bundle):
    long = "9" * (MAX_STRING_CHARS + 1)
    message = rf"must be a str of at most {MAX_STRING_CHARS} characters, as the column's vocabulary holds\. Received"
    with pytest.raises(RankingError, match=rf"^user\.zip: {message}"):
        rank_items(bundle, None, user={"zip": long}, candidates=[1])
    with pytest.raises(RankingError, match=r"^candidates\[0\]: must be an int that fits int64"):
        rank_items(bundle, 1, candidates=[long])
    rows = {name: [ROW[name]] * 2 for name in ROW}
    rows["occupation"][1] = long
    too_long = rf"column 'occupation' holds values longer than {MAX_STRING_CHARS} characters, the most a category"
    with pytest.raises(TableDataError, match=rf"{too_long} value may have\. Received 1 row: occupation\[1\]="):
        bundle.predict(rows)


def test_unparsable_json_is_a_400_naming_the_body(client):
    for raw in (b"[" * 100_000 + b"]" * 100_000, b'{"user_id": ' + b"1" * 5000 + b"}"):
        response = client.post("/rank", content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 400
        assert response.json()["error"].startswith("body: malformed JSON: it could not be parsed")


# ------------------------------------------------------------------ connections

FAST = ConnectionLimits(max_connections=8, header_timeout=0.3, body_timeout=0.3, keep_alive_timeout=0.3)
WAIT = 10.0  # seconds a test socket waits for the server before the test fails


@pytest.fixture(scope="module")
def fast_server(bundle):
    with BackgroundServer(create_app(bundle), limits=FAST) as running:
        yield running


def connect(server: BackgroundServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=WAIT)
    sock.settimeout(WAIT)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a socket timeout fails the test)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def request(path: str, body: dict, *, close: bool = False) -> bytes:
    data = json.dumps(body).encode()
    head = f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    return (head + ("Connection: close\r\n" if close else "") + "\r\n").encode() + data


def read_response(sock: socket.socket) -> tuple[int, dict, dict]:
    """(status, headers, JSON body) of one response with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection mid-response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection mid-body"
        body += chunk
    return int(lines[0].split()[1]), headers, json.loads(body)


def test_half_a_request_line_is_answered_408_and_closed_after_the_header_timeout(fast_server):
    with connect(fast_server) as sock:
        start = time.monotonic()
        sock.sendall(b"POST /ra")
        answer = read_until_closed(sock)
        waited = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    body = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert body["error"] == "head: request head not received in full within 0.3 s"
    assert waited >= FAST.header_timeout * 0.9


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(fast_server):
    with connect(fast_server) as sock:
        assert read_until_closed(sock) == b""


def test_headers_trickled_byte_by_byte_still_time_out(fast_server):
    """The head's deadline runs from the connection, not from the last byte (slowloris)."""
    head = b"POST /rank HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"a" * 1000
    answer = b""
    with connect(fast_server) as sock:
        start = time.monotonic()
        for byte in head:  # a byte every 50 ms would take a minute; the server stops it first
            sock.settimeout(0.05)
            try:
                sock.sendall(bytes([byte]))
                answer = sock.recv(65536)
            except TimeoutError:
                continue  # nothing yet: send the next byte
            except OSError:  # reset: the server closed it
                break
            sock.settimeout(WAIT)
            answer += read_until_closed(sock)
            break
        waited = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer[:100]
    assert waited < WAIT


def test_a_stalled_body_is_answered_408_and_closed_after_the_body_timeout(fast_server):
    with connect(fast_server) as sock:
        sock.sendall(
            b"POST /rank HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            + b'{"user_id"'
        )
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"connection: close" in answer.lower()
    assert json.loads(answer.partition(b"\r\n\r\n")[2]) == {
        "error": "body: not received in full within 0.3 s",
        "errors": [{"field": "body", "message": "not received in full within 0.3 s"}],
    }
    with connect(fast_server) as sock:  # and the server goes on serving
        sock.sendall(request("/rank", {"user_id": 1, "candidates": [1, 2]}, close=True))
        assert read_response(sock)[0] == 200


def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout(fast_server):
    with connect(fast_server) as sock:
        for _ in range(2):  # kept alive between quick requests
            sock.sendall(request("/rank", {"user_id": 1, "candidates": [1, 2]}))
            assert read_response(sock)[0] == 200
        assert read_until_closed(sock) == b""


def test_over_the_connection_cap_a_connection_gets_a_503_and_is_served_once_others_close(bundle):
    limits = ConnectionLimits(max_connections=3, header_timeout=WAIT, keep_alive_timeout=WAIT)
    with BackgroundServer(create_app(bundle), limits=limits) as server:
        held = [connect(server) for _ in range(3)]
        try:
            for sock in held:  # served, and kept open (idle) afterwards
                sock.sendall(request("/rank", {"user_id": 1, "candidates": [1]}))
                assert read_response(sock)[0] == 200
            with connect(server) as extra:
                extra.sendall(request("/rank", {"user_id": 1, "candidates": [1]}))
                status, headers, body = read_response(extra)
                assert status == 503 and headers["connection"] == "close" and headers["retry-after"] == "1"
                assert body["error"] == "server: at most 3 connections are served at once; try again later"
                assert read_until_closed(extra) == b""
            held[0].sendall(request("/rank", {"user_id": 2, "candidates": [1]}))  # those in are still served
            assert read_response(held[0])[0] == 200
        finally:
            for sock in held:
                sock.close()
        deadline = time.monotonic() + WAIT
        while True:  # the server notices the closes asynchronously; it must soon let a new one in
            with connect(server) as sock:
                sock.sendall(request("/rank", {"user_id": 1, "candidates": [1]}, close=True))
                status = read_response(sock)[0]
            if status == 200 or time.monotonic() > deadline:
                break
        assert status == 200


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"max_connections": 0}, r"`max_connections` must be a positive int\. Received: max_connections=0"),
        ({"max_connections": 2.5}, r"`max_connections` must be a positive int\. Received: max_connections=2\.5"),
        ({"max_connections": True}, r"`max_connections` must be a positive int\. Received: max_connections=True"),
        ({"header_timeout": 0}, r"`header_timeout` must be a positive, finite number of seconds\. Received: "
                                r"header_timeout=0"),
        ({"body_timeout": -1.0}, r"`body_timeout` must be .*Received: body_timeout=-1\.0"),
        ({"keep_alive_timeout": float("inf")}, r"`keep_alive_timeout` must be .*Received: keep_alive_timeout=inf"),
        ({"header_timeout": float("nan")}, r"`header_timeout` must be .*Received: header_timeout=nan"),
        ({"body_timeout": "30"}, r"`body_timeout` must be .*Received: body_timeout='30'"),
        ({"body_timeout": False}, r"`body_timeout` must be .*Received: body_timeout=False"),
    ],
)  # fmt: skip
def test_connection_limits_validation(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        ConnectionLimits(**kwargs)


def test_protocol_and_server_need_connection_limits():
    with pytest.raises(ValueError, match=r"`limits` must be a ConnectionLimits\. Received: dict"):
        GuardedProtocol.with_limits({"max_connections": 3})
    with pytest.raises(ValueError, match=r"`limits` must be a ConnectionLimits\. Received: int"):
        make_server(lambda scope, receive, send: None, limits=3)


def test_cli_types_for_limits():
    assert positive_int("7") == 7 and seconds("0.25") == 0.25
    for text in ("0", "-3", "many", "2.5"):
        with pytest.raises(argparse.ArgumentTypeError, match=rf"must be a positive int, got '{re.escape(text)}'"):
            positive_int(text)
    for text in ("0", "-1", "inf", "nan", "soon"):
        with pytest.raises(argparse.ArgumentTypeError, match=rf"must be a positive number of seconds, got '{text}'"):
            seconds(text)


# ------------------------------------------------------------------ listening


def test_bind_socket_names_host_port_and_cause():
    taken = bind_socket("127.0.0.1", 0)
    try:
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=rf"^cannot listen on 127\.0\.0\.1:{port}: the port is already in use"):
            bind_socket("127.0.0.1", port)
    finally:
        taken.close()
    with pytest.raises(OSError, match=r"^cannot listen on no-such-host\.invalid:0: the host 'no-such-host\.invalid' "
                                      r"does not resolve \("):  # fmt: skip
        bind_socket("no-such-host.invalid", 0)
    with pytest.raises(OSError, match=r"^cannot listen on 192\.0\.2\.1:0: the address is not one of this machine's"):
        bind_socket("192.0.2.1", 0)  # TEST-NET-1: assigned to no machine
    with pytest.raises(ValueError, match=r"`host` must be a str\. Received: host=None"):
        bind_socket(None, 0)


def serve_error(*args: str) -> subprocess.CompletedProcess:
    """Run `python -m dcnrank serve ARGS` (expected to fail fast)."""
    command = [sys.executable, "-m", "dcnrank", "serve", "--model", "no-bundle-needed", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_serve_on_a_busy_port_is_a_one_line_error():
    taken = bind_socket("127.0.0.1", 0)
    try:
        port = taken.getsockname()[1]
        result = serve_error("--port", str(port))
    finally:
        taken.close()
    assert result.returncode == 2 and result.stdout == ""
    assert re.fullmatch(
        rf"dcnrank serve: error: cannot listen on 127\.0\.0\.1:{port}: the port is already in use \(another "
        r"server\?\); choose another port, or 0 for a free one\n",
        result.stderr,
    ), result.stderr


def test_serve_on_an_unknown_host_is_a_one_line_error():
    result = serve_error("--host", "no-such-host.invalid", "--port", "8123")
    assert result.returncode == 2 and result.stdout == ""
    assert re.fullmatch(
        r"dcnrank serve: error: cannot listen on no-such-host\.invalid:8123: the host 'no-such-host\.invalid' "
        r"does not resolve \([^\n]+\)\n",
        result.stderr,
    ), result.stderr


def test_serve_with_a_bad_limit_is_a_usage_error():
    result = serve_error("--max-connections", "0")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "dcnrank serve: error: argument --max-connections: must be a positive int, got '0'"
    )
