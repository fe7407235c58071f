"""`dcnrank serve`: the HTTP ranking service (`/rank`, `/predict`, `/health`) for a bundle."""

from __future__ import annotations

import argparse
import math
import sys

from dcnrank.bundle import load
from dcnrank.serve.connection_limits import ConnectionLimits

EXAMPLES = """examples:
  dcnrank serve --model runs/ctr                        # http://127.0.0.1:8000
  dcnrank serve --model runs/ctr --port 0               # a free port, printed on start
  dcnrank serve --model runs/ctr --max-connections 64 --header-timeout 5
  curl -s localhost:8000/rank -H 'content-type: application/json' -d '{"user_id": 42, "top": 5}'

A bundle carries its catalogue (the users and items of its training rows), and its
request fields are its spec's columns.

The API and its limits are in docs/serving.md (and live at http://HOST:PORT/docs).
Needs the serve extra: pip install 'dcnrank[serve]'.
"""


def port_number(text: str) -> int:
    """argparse type: a TCP port, 0 (pick a free one) to 65535."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an int ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive int, got {text!r}")
    return value


def seconds(text: str) -> float:
    """argparse type: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "serve",
        help="serve a bundle over HTTP: /rank, /predict, /health",
        description="Serve a bundle over HTTP (FastAPI + uvicorn): POST /rank ranks the catalogue's "
        "items for a user (those the user did not interact with in the training rows, unless "
        "candidates are given), POST /predict scores explicit rows, GET /health describes the model. "
        "The bundle holds its catalogue, and its spec types the requests.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, metavar="DIR", help="the bundle folder")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=port_number, default=8000, help="port (default: 8000; 0 picks a free one)")
    parser.add_argument("--access-log", action="store_true", help="log every request (costs throughput)")
    defaults = ConnectionLimits()
    limits = parser.add_argument_group("connections (see docs/serving.md)")
    limits.add_argument(
        "--max-connections", type=positive_int, default=defaults.max_connections, metavar="N",
        help=f"most connections open at once; more get a 503 (default: {defaults.max_connections})",
    )  # fmt: skip
    limits.add_argument(
        "--header-timeout", type=seconds, default=defaults.header_timeout, metavar="SECONDS",
        help=f"time to receive a request's head, else 408 and close (default: {defaults.header_timeout:g})",
    )  # fmt: skip
    limits.add_argument(
        "--body-timeout", type=seconds, default=defaults.body_timeout, metavar="SECONDS",
        help=f"time to receive a request's body, else 408 and close (default: {defaults.body_timeout:g})",
    )  # fmt: skip
    limits.add_argument(
        "--keep-alive-timeout", type=seconds, default=defaults.keep_alive_timeout, metavar="SECONDS",
        help=f"how long an idle kept-alive connection stays open (default: {defaults.keep_alive_timeout:g})",
    )  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        from dcnrank.serve import bind_socket, create_app, make_server
    except ImportError as error:
        print(f"dcnrank serve: error: {error}; install the serve extra: pip install 'dcnrank[serve]'",
              file=sys.stderr)  # fmt: skip
        return 2
    limits = ConnectionLimits(
        max_connections=args.max_connections,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        keep_alive_timeout=args.keep_alive_timeout,
    )
    # Bound first: a taken port or a host that does not resolve is an error (one line,
    # naming host:port) before the bundle is loaded.
    sock = bind_socket(args.host, args.port)
    try:
        bundle = load(args.model)
        where = "no catalogue" if bundle.catalog is None else (
            f"catalogue of {bundle.catalog.num_users} users, {bundle.catalog.num_items} items"
        )  # fmt: skip
        host = f"[{args.host}]" if ":" in args.host else args.host
        # The first line says where it listens (with the port that --port 0 picked); the
        # socket already listens, so a client may connect as soon as it reads this line.
        print(f"dcnrank serve: listening on http://{host}:{sock.getsockname()[1]} ({args.model}, {where})",
              flush=True)  # fmt: skip
        make_server(create_app(bundle), limits=limits, access_log=args.access_log).run(sockets=[sock])
    finally:
        sock.close()
    return 0
