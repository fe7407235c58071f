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
import urllib.error
import urllib.request

import pytest
from bundle_support import HAD, build_bundle

from dcnrank.cli.serve import port_number


@pytest.fixture(scope="module")
def bare_bundle(tmp_path_factory):
    """A bundle of the shared spec without a catalogue."""
    return build_bundle(tmp_path_factory.mktemp("serve-cli") / "bare", catalog=False)


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


def post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_serve_with_its_catalogue_answers_rank_and_health(trained_bundle):
    process, url, where = start("--model", str(trained_bundle))
    try:
        assert where == f"{trained_bundle}, catalogue of 6 users, 5 items"
        status, ranking = post(url + "/rank", {"user_id": 1})
        assert status == 200 and ranking["candidates"] == 3
        assert {item["item"]["item_id"] for item in ranking["items"]} == {1, 2, 3, 4, 5} - HAD[1]
        with urllib.request.urlopen(url + "/health", timeout=30) as response:
            assert json.loads(response.read())["catalog"] == {"users": 6, "items": 5}
    finally:
        stderr = stop(process)
    assert "Traceback" not in stderr


def test_serve_without_catalogue(bare_bundle):
    process, url, where = start("--model", str(bare_bundle))
    try:
        assert where == f"{bare_bundle}, no catalogue"
        status, answer = post(url + "/rank", {"user_id": 1, "candidates": [2, 3]})
        assert status == 422 and answer["errors"][0]["field"] == "model"
        status, answer = post(url + "/predict", {"rows": [{"user_id": 1, "item_id": 2}]})
        assert status == 200 and len(answer["scores"]) == 1
    finally:
        stop(process)


def test_serve_a_missing_bundle_exits_2(tmp_path, capsys):
    from dcnrank.cli.main import main

    missing = tmp_path / "none"
    assert main(["serve", "--model", str(missing), "--port", "0"]) == 2
    assert capsys.readouterr().err == f"dcnrank serve: error: {missing}: bundle folder not found\n"


@pytest.mark.parametrize("text", ["-1", "65536", "http", "8000.5"])
def test_port_number_type(text):
    with pytest.raises(argparse.ArgumentTypeError, match=rf"must be a port number from 0 to 65535, got '{text}'"):
        port_number(text)
    assert port_number("0") == 0 and port_number("8000") == 8000
