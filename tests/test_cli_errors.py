"""The CLI's last line of defence: every error is one line on stderr and exit code 1 or 2,
never a traceback unless `DCNRANK_DEBUG` asks; and `explain --out` writes the path it reports."""

import os
import subprocess
import sys

import numpy as np
import pytest
from bundle_support import build_bundle

import dcnrank.cli.main
import dcnrank.explain.heatmap
from dcnrank.cli.main import DEBUG_ENV, main
from dcnrank.explain.heatmap import check_png_path, plot_heatmap
from dcnrank.models import DCNConfig

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def python(*args, **kwargs):
    """Run `python ARGS` in a fresh interpreter, without DCNRANK_DEBUG, its output buffered as a user's is."""
    env = {k: v for k, v in os.environ.items() if k not in (DEBUG_ENV, "PYTHONUNBUFFERED")}
    kwargs = {"stdout": subprocess.PIPE, **kwargs}
    return subprocess.run([sys.executable, *args], stderr=subprocess.PIPE, text=True, timeout=120, env=env, **kwargs)


def failing(error):
    def run(args):
        raise error

    return run


@pytest.mark.slow  # a fresh interpreter imports torch and the CLI: ~4 s
def test_an_unexpected_exception_is_one_line_and_exit_1_through_the_entry_point():
    proc = python(
        "-c",
        "import dcnrank.cli.explain as explain\n"
        "def load(path):\n"
        "    raise RuntimeError('tensor in a bad state\\n  at C++ frame 1\\n  at C++ frame 2')\n"
        "explain.load = load\n"
        "from dcnrank.cli.main import main\n"
        "raise SystemExit(main(['explain', '--model', 'some/bundle']))\n",
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "dcnrank explain: error: RuntimeError: tensor in a bad state … "
        "(unexpected; DCNRANK_DEBUG=1 shows the traceback)"
    ]


@pytest.mark.parametrize(
    ("error", "code", "line"),
    [
        (KeyError("user_id"), 1, "KeyError: 'user_id' (unexpected; DCNRANK_DEBUG=1 shows the traceback)"),
        (MemoryError(), 1, "MemoryError (unexpected; DCNRANK_DEBUG=1 shows the traceback)"),
        (TypeError("bad operand"), 1, "TypeError: bad operand (unexpected; DCNRANK_DEBUG=1 shows the traceback)"),
        (ValueError("`top` must be positive. Received: top=0"), 2, "`top` must be positive. Received: top=0"),
        (ValueError(), 2, "ValueError"),
        (PermissionError(13, "Permission denied", "out.csv"), 2, "[Errno 13] Permission denied: 'out.csv'"),
    ],
)
def test_errors_are_one_line_with_their_exit_code(error, code, line, monkeypatch, capsys):
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    monkeypatch.setattr(dcnrank.cli.explain, "run", failing(error))
    assert main(["explain", "--model", "b"]) == code
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.splitlines() == [f"dcnrank explain: error: {line}"]


@pytest.mark.parametrize("error", [RuntimeError("boom"), ValueError("bad input")])
def test_debug_shows_the_traceback_then_the_line(error, monkeypatch, capsys):
    monkeypatch.setenv(DEBUG_ENV, "1")
    monkeypatch.setattr(dcnrank.cli.explain, "run", failing(error))
    assert main(["explain", "--model", "b"]) in (1, 2)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-2] == f"{type(error).__name__}: {error}" and lines[-1].startswith("dcnrank explain: error: ")


@pytest.mark.parametrize("value", ["", "0", "false", "No", "off"])
def test_debug_off_values(value, monkeypatch):
    monkeypatch.setenv(DEBUG_ENV, value)
    assert not dcnrank.cli.main.debugging()


def test_ctrl_c_exits_130(monkeypatch, capsys):
    monkeypatch.setattr(dcnrank.cli.explain, "run", failing(KeyboardInterrupt()))
    assert main(["explain", "--model", "b"]) == 130
    assert capsys.readouterr().err == "interrupted\n"


@pytest.mark.parametrize("argv", [[], ["nope"], ["explain"], ["explain", "--model", "b", "--top", "0"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "usage: dcnrank" in capsys.readouterr().err


def test_help_documents_the_environment_and_exit_codes(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "DCNRANK_DEBUG=1           on an error, print the full traceback" in out
    assert "DCNRANK_MEMORY_LIMIT=64G" in out and "1 an unexpected error, 2 a usage error" in out


PRINTING_COMMAND = (
    "import dcnrank.cli.explain as explain\n"
    "explain.run = lambda args: print('rank 1') or 0\n"  # buffered: written when flushed
    "from dcnrank.cli.main import main\n"
    "raise SystemExit(main(['explain', '--model', 'b']))\n"
)


@pytest.mark.slow  # a fresh interpreter imports torch and the CLI: ~4 s
@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (
            ["-c", PRINTING_COMMAND],
            ["dcnrank explain: error: the output was closed before it was all written (broken pipe)"],
        ),
        (["-m", "dcnrank", "--version"], []),
    ],
    ids=["command", "version"],
)
def test_a_closed_output_pipe_is_one_line_not_a_traceback(args, stderr):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone (`dcnrank ... | head` after head exits)
    try:
        proc = python(*args, stdout=write_end)
    finally:
        os.close(write_end)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == stderr  # not Python's "Exception ignored ... BrokenPipeError"


# `explain --out PATH` writes PATH, the path it reports.


@pytest.fixture
def bundle(tmp_path):
    return build_bundle(tmp_path / "b", config=DCNConfig(structure="cross_only", embedding_dim=2))


@pytest.mark.parametrize("name", ["heatmap", "heatmap.png", "heatmap.v2", "HEAT.PNG"])
def test_explain_writes_exactly_the_out_path(name, bundle, tmp_path, capsys):
    out = tmp_path / "plots" / name
    assert main(["explain", "--model", str(bundle), "--out", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"wrote heatmap {out}"
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert sorted(p.name for p in out.parent.iterdir()) == [name]  # no `heatmap.png` beside `heatmap`, no temporary


def test_explain_refuses_another_format_or_a_folder_before_loading(tmp_path, capsys):
    assert main(["explain", "--model", str(tmp_path / "missing"), "--out", str(tmp_path / "h.pdf")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "dcnrank explain: error: `--out` must name a PNG file (the heatmap is a PNG); .pdf names another format. "
        f"Received: --out={str(tmp_path / 'h.pdf')!r}"
    ]
    assert main(["explain", "--model", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    assert "`--out` must name a file, not a folder" in capsys.readouterr().err


def test_plot_heatmap_replaces_a_file_whole(tmp_path):
    path = tmp_path / "h"
    path.write_bytes(b"old")
    assert plot_heatmap(np.eye(2), ["a", "b"], path) == path
    assert path.read_bytes()[:8] == PNG_MAGIC and [p.name for p in tmp_path.iterdir()] == ["h"]
    with pytest.raises(ValueError, match=r"`path` must name a PNG file .* Received: path='x.JPG'"):
        check_png_path("x.JPG")
    with pytest.raises(ValueError, match=r"`path` must name a file, not a folder"):
        plot_heatmap(np.eye(2), ["a", "b"], tmp_path)
