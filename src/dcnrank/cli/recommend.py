"""`dcnrank recommend`: the catalogue items a user has not interacted with, best score first."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from dcnrank.bundle import load
from dcnrank.bundle.ranking import Ranking
from dcnrank.cli.common import positive_int
from dcnrank.workflows.recommend import recommend_items

EXAMPLES = """examples:
  dcnrank recommend --model runs/ctr --user 42
  dcnrank recommend --model runs/ctr --user u_0017 --top 20 --json

A bundle ranks the items of its catalogue (the items of its training rows), leaving
out those the user interacted with there, exactly as `POST /rank` of `dcnrank serve` does.
"""
# The widest an item column is shown in the text table.
_CELL_CHARS = 40


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "recommend",
        help="rank the catalogue items a user has not interacted with",
        description="Score every item of a bundle's catalogue that the user did not interact with "
        "in the training rows and print the best: rank, score (a probability for a binary task), the item "
        "and its item columns. The user's columns come from the catalogue; a user the model does not know "
        "is scored through the out-of-vocabulary row, with a notice.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, metavar="DIR", help="the bundle folder")
    parser.add_argument("--user", required=True, help="the user's id (the value of the spec's user column)")
    parser.add_argument("--top", type=positive_int, default=10, help="how many items (default: 10)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return _print_ranking(recommend_items(load(args.model), args.user, args.top), args)


def _print_ranking(ranking: Ranking, args: argparse.Namespace) -> int:
    for notice in ranking.notices:
        print(f"dcnrank recommend: notice: {notice}", file=sys.stderr)
    if args.json:
        print(json.dumps(ranking.to_dict(), indent=2, ensure_ascii=False))
        return 0
    if not ranking.items:
        print(f"user {args.user} has interacted with every catalogue item; nothing to recommend")
        return 0
    names = list(ranking.items[0].item)
    rows = [
        [str(item.rank), f"{item.score:.4f}", *(_cell(item.item[name]) for name in names)] for item in ranking.items
    ]
    header = ["rank", "score", *names]
    widths = [max(len(row[j]) for row in [header, *rows]) for j in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(
                cell.rjust(w) if j < 2 else cell.ljust(w) for j, (cell, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
    return 0


def _cell(value: Any) -> str:
    text = "" if value is None else "|".join(map(str, value)) if isinstance(value, list) else str(value)
    return text if len(text) <= _CELL_CHARS else text[: _CELL_CHARS - 1] + "…"
