"""`dcnrank recommend`: the catalogue items a user has not interacted with, best score first."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from dcnrank.bundle import Bundle, TableBundle, load_any
from dcnrank.bundle.ranking import Ranking
from dcnrank.cli.common import positive_int
from dcnrank.cli.evaluate import movielens_folder
from dcnrank.data import load_movielens
from dcnrank.workflows import MovieLensCatalog, recommend
from dcnrank.workflows.recommend import recommend_items

EXAMPLES = """examples:
  dcnrank recommend --model runs/ctr --user 42
  dcnrank recommend --model runs/ctr --user u_0017 --top 20 --json

A table bundle ranks the items of its catalogue (the items of its training rows), leaving
out those the user interacted with there, exactly as `POST /rank` of `dcnrank serve` does.
"""
# The widest an item column is shown in the text table.
_CELL_CHARS = 40


def user_id(text: str) -> int:
    """argparse type: a MovieLens user id, a positive integer."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer user id, got {text!r}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "recommend",
        help="rank the catalogue items a user has not interacted with",
        description="Score every item of a table bundle's catalogue that the user did not interact with "
        "in the training rows and print the best: rank, score (a probability for a binary task), the item "
        "and its item columns. The user's columns come from the catalogue; a user the model does not know "
        "is scored through the out-of-vocabulary row, with a notice. A MovieLens-style bundle ranks the "
        "movies of ml-100k the user has not rated.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, metavar="DIR", help="the bundle folder")
    parser.add_argument("--user", required=True, help="the user's id (the value of the spec's user column)")
    parser.add_argument("--top", type=positive_int, default=10, help="how many items (default: 10)")
    parser.add_argument(
        "--data-dir",
        default=None,
        help="MovieLens-style bundles only: folder with ml-100k/ "
        "(default: the bundle's, else $DCNRANK_DATA or the cache)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    bundle = load_any(args.model)
    if isinstance(bundle, TableBundle):
        if args.data_dir is not None:
            raise ValueError("--data-dir applies to MovieLens-style bundles; a table bundle holds its catalogue")
        return _print_ranking(recommend_items(bundle, args.user, args.top), args)
    return _run_movielens(bundle, args)


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


def _run_movielens(bundle: Bundle, args: argparse.Namespace) -> int:
    """`recommend` for a MovieLens-style bundle; goes when MovieLens trains through the table path."""
    try:
        args.user = user_id(args.user)
    except argparse.ArgumentTypeError as error:
        raise ValueError(f"argument --user: {error}") from None
    catalog = MovieLensCatalog.from_ratings(load_movielens(movielens_folder(bundle, args.data_dir)))
    result = recommend(bundle, catalog, args.user, args.top)
    if not result.in_vocabulary:
        where = "" if result.in_data else " and not in u.user (all user features unknown)"
        print(
            f"dcnrank recommend: notice: user {args.user} is not in the model's vocabulary{where}; "
            "scored through the out-of-vocabulary row",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(asdict(result), indent=2, ensure_ascii=False))
        return 0
    if not result.items:
        print(f"user {args.user} has rated every movie; nothing to recommend")
        return 0
    width = max(len(item.title) for item in result.items)
    print(f"{'rank':>4}  {'movie':>5}  {'title':<{width}}  predicted")
    for item in result.items:
        print(f"{item.rank:>4}  {item.movie_id:>5}  {item.title:<{width}}  {item.predicted_rating:9.3f}")
    return 0
