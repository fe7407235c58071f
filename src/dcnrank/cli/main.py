"""Entry point of the `dcnrank` command: parses arguments, dispatches to a subcommand, and
turns whatever it raises into one line on stderr and an exit code."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence

from dcnrank import __version__
from dcnrank.cli import demo, evaluate, explain, export, movielens, predict, recommend, serve, toy, train
from dcnrank.models.size import MEMORY_LIMIT_ENV

SUBCOMMANDS = (toy, movielens, demo, train, evaluate, recommend, predict, explain, serve, export)

DEBUG_ENV = "DCNRANK_DEBUG"
# Exit codes: an error in the input (arguments, config, data, files) or an unexpected one.
EXIT_INPUT_ERROR = 2
EXIT_UNEXPECTED = 1
EXIT_INTERRUPTED = 130

EPILOG = f"""environment:
  DCNRANK_DATA=DIR          where MovieLens is (a folder holding ml-100k/, or for
                            --dataset also ml-1m/, ml-10M100K/, ml-latest/, ml-latest-small/)
  {MEMORY_LIMIT_ENV}=64G  memory a model may take, weights, gradients and optimizer
                            state together (bytes, or with K, M, G, T); default: the
                            memory available. A larger model is refused before it is built.
  {DEBUG_ENV}=1           on an error, print the full traceback before the one-line message

exit codes:
  0 done, 1 an unexpected error, 2 a usage error or an error in the input (arguments,
  config, data, files), 130 interrupted (Ctrl-C)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dcnrank",
        description="Deep & Cross Network ranking on PyTorch.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"dcnrank {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS:
        module.register(sub)
    return parser


def debugging() -> bool:
    """Whether `DCNRANK_DEBUG` asks for tracebacks (set, and not 0/false/no/off)."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


def one_line(error: BaseException, with_type: bool = False) -> str:
    """`error`'s message on one line: its first non-blank line, the rest marked with `…`;
    led by the exception's type when asked or when the message is empty or a bare repr
    (a `KeyError`'s `'name'`).

    Example:
        >>> one_line(ValueError("bad value"))
        'bad value'
        >>> one_line(KeyError("user_id")), one_line(RuntimeError("first\\nsecond"), with_type=True)
        ("KeyError: 'user_id'", 'RuntimeError: first …')
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    message = lines[0] + (" …" if len(lines) > 1 else "") if lines else ""
    if with_type or not message or isinstance(error, KeyError):
        return f"{type(error).__name__}: {message}" if message else type(error).__name__
    return message


def _report(command: str, message: str) -> None:
    if debugging():
        traceback.print_exc()
    print(f"dcnrank {command}: error: {message}", file=sys.stderr)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush to a closed pipe is silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # pragma: no cover - stdout without a file descriptor
        pass


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    try:
        return parser.parse_args(argv)
    finally:
        sys.stdout.flush()  # --help and --version exit in here: a closed pipe shows now, not at exit


def main(argv: Sequence[str] | None = None) -> int:
    """Run `dcnrank ARGS`; returns the exit code.

    Usage errors exit with 2 (argparse's message). A subcommand's error is one line on
    stderr, `dcnrank COMMAND: error: MESSAGE`: exit code 2 for an error in the input
    (`ValueError`, `OSError` and their kinds: config, bundle, data, file errors), 1 for
    anything else (with the exception's type); Ctrl-C exits with 130. With
    `DCNRANK_DEBUG=1` the full traceback is printed first.
    """
    parser = build_parser()
    try:
        args = _parse(parser, argv)
    except BrokenPipeError:  # --help or --version into a closed pipe
        _quiet_stdout()
        return EXIT_UNEXPECTED
    logging.basicConfig(
        level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except KeyboardInterrupt:
        if debugging():
            traceback.print_exc()
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _quiet_stdout()
        _report(args.command, "the output was closed before it was all written (broken pipe)")
        return EXIT_UNEXPECTED
    except (ValueError, FileNotFoundError, OSError) as error:
        _report(args.command, str(error) or one_line(error))
        return EXIT_INPUT_ERROR
    except Exception as error:  # the last line of defence: no traceback unless asked for
        _report(args.command, f"{one_line(error, with_type=True)} (unexpected; {DEBUG_ENV}=1 shows the traceback)")
        return EXIT_UNEXPECTED
