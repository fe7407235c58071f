"""Serving: an HTTP ranking service (FastAPI + uvicorn) around a bundle.

    app = dcnrank.serve.create_app(dcnrank.bundle.load("runs/ctr"))
    # POST /rank {"user_id": 42} -> the best catalogue items the user has not interacted with

Needs the `serve` extra (`pip install 'dcnrank[serve]'`); see docs/serving.md. The names
below are imported on first use, so that `dcnrank.serve.connection_limits` (what the
`dcnrank serve` flags default to) loads without FastAPI or uvicorn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dcnrank.serve.app import create_app
    from dcnrank.serve.connection_limits import ConnectionLimits
    from dcnrank.serve.errors import RequestError
    from dcnrank.serve.limits import DEFAULT_TOP, MAX_BODY_BYTES, MAX_ROWS
    from dcnrank.serve.server import BackgroundServer, bind_socket, make_server

_MODULES = {
    "create_app": "app",
    "ConnectionLimits": "connection_limits",
    "RequestError": "errors",
    "DEFAULT_TOP": "limits",
    "MAX_BODY_BYTES": "limits",
    "MAX_ROWS": "limits",
    "BackgroundServer": "server",
    "bind_socket": "server",
    "make_server": "server",
}

__all__ = [
    "DEFAULT_TOP",
    "MAX_BODY_BYTES",
    "MAX_ROWS",
    "BackgroundServer",
    "ConnectionLimits",
    "RequestError",
    "bind_socket",
    "create_app",
    "make_server",
]


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'dcnrank.serve' has no attribute {name!r}")
    return getattr(importlib.import_module(f"dcnrank.serve.{module}"), name)
