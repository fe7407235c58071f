"""`dcnrank recommend`: the movies a user has not rated, best predicted rating first."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from dcnrank.bundle import load
from dcnrank.cli.common import positive_int
from dcnrank.cli.evaluate import movielens_folder
from dcnrank.data import load_movielens
from dcnrank.workflows import MovieLensCatalog, recommend

EXAMPLES = """examples:
  dcnrank recommend --model runs/dcn --user 42
  dcnrank recommend --model runs/dcn --user 42 --top 20 --json
"""


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
        help="rank the movies a user has not rated",
        description="Score every MovieLens movie the user has not rated with a bundle and print "
        "the best: rank, movie id, title, predicted rating. The user's side features come from "
        "u.user; a user the model does not know is scored through the out-of-vocabulary row.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, metavar="DIR", help="the bundle folder")
    parser.add_argument("--user", required=True, type=user_id, help="the MovieLens user id")
    parser.add_argument("--top", type=positive_int, default=10, help="how many movies (default: 10)")
    parser.add_argument("--data-dir", default=None, help="folder with ml-100k/ (default: the bundle's, "
                        "else $DCNRANK_DATA or the cache)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    bundle = load(args.model)
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
