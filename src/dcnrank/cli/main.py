"""Entry point of the `dcnrank` command: parses arguments and dispatches to a subcommand."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from dcnrank import __version__
from dcnrank.cli import demo, evaluate, explain, export, movielens, predict, recommend, serve, toy, train

SUBCOMMANDS = (toy, movielens, demo, train, evaluate, recommend, predict, explain, serve, export)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dcnrank",
        description="Deep & Cross Network ranking on PyTorch.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"dcnrank {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, OSError) as error:
        print(f"dcnrank {args.command}: error: {error}", file=sys.stderr)
        return 2
