"""`dcnrank serve` through the real entry point: a server process on 127.0.0.1 and a free
port (`--port 0`, printed on its first line), queried over HTTP, then stopped."""

from __future__ import annotations

import argparse
import json
import queue
import re
import subprocess
import sys
import threading
import urllib.request

import pytest
from test_serve import save_tiny_bundle

from dcnrank.cli.serve import port_number


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    return save_tiny_bundle(tmp_path_factory.mktemp("serve-cli"))


def start(*args: str):
    """Start `dcnrank serve ARGS --port 0`; return the process and its URL (from its first line)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "dcnrank", "serve", *args, "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(process.stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=120)
    except queue.Empty:
        process.kill()
        raise
    match = re.match(r"dcnrank serve: listening on (http://127\.0\.0\.1:\d+) \((.*)\)$", line.strip())
    if match is None:
        process.kill()
        pytest.fail(f"unexpected first line {line!r}; stderr: {process.stderr.read()}")
    return process, match.group(1), match.group(2)


def stop(process: subprocess.Popen) -> str:
    process.terminate()
    _, stderr = process.communicate(timeout=60)
    return stderr


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_serve_with_catalog_answers_rank_and_health(tiny_files):
    bundle, data = tiny_files
    process, url, where = start("--model", str(bundle), "--data-dir", str(data))
    try:
        assert where == f"{bundle}, catalog of 3 users, 4 movies"
        ranking = post(url + "/rank", {"user_id": 1})
        assert ranking["candidates"] == 2 and {i["movie_id"] for i in ranking["items"]} == {3, 4}
        with urllib.request.urlopen(url + "/health", timeout=30) as response:
            assert json.loads(response.read())["catalog"] == {"users": 3, "movies": 4}
    finally:
        stderr = stop(process)
    assert "Traceback" not in stderr


def test_serve_without_catalog(tiny_files):
    process, url, where = start("--model", str(tiny_files[0]), "--no-catalog")
    try:
        assert where.endswith(", no catalog")
        assert post(url + "/rank", {"user_id": 1, "candidates": [2, 3]})["candidates"] == 2
    finally:
        stop(process)


def test_serve_missing_data_dir_exits_2(tiny_files, tmp_path, capsys):
    from dcnrank.cli.main import main

    missing = tmp_path / "none"
    assert main(["serve", "--model", str(tiny_files[0]), "--data-dir", str(missing)]) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("dcnrank serve: error: ") and str(missing) in stderr


@pytest.mark.parametrize("text", ["-1", "65536", "http", "8000.5"])
def test_port_number_type(text):
    with pytest.raises(argparse.ArgumentTypeError, match=rf"must be a port number from 0 to 65535, got '{text}'"):
        port_number(text)
    assert port_number("0") == 0 and port_number("8000") == 8000
