"""Serving: an HTTP ranking service (FastAPI + uvicorn) around a bundle.

    app = dcnrank.serve.create_app(dcnrank.bundle.load("runs/dcn"), catalog)
    # POST /rank {"user_id": 42} -> the best movies the user has not rated

Needs the `serve` extra (`pip install 'dcnrank[serve]'`); see docs/serving.md.
"""

from dcnrank.serve.app import create_app
from dcnrank.serve.errors import RequestError
from dcnrank.serve.limits import DEFAULT_TOP, MAX_BODY_BYTES, MAX_ROWS
from dcnrank.serve.ranker import USER_FEATURES, Prediction, RankedMovie, Ranker, Ranking
from dcnrank.serve.server import BackgroundServer, bind_socket, make_server

__all__ = [
    "DEFAULT_TOP",
    "MAX_BODY_BYTES",
    "MAX_ROWS",
    "USER_FEATURES",
    "BackgroundServer",
    "Prediction",
    "RankedMovie",
    "Ranker",
    "Ranking",
    "RequestError",
    "bind_socket",
    "create_app",
    "make_server",
]
