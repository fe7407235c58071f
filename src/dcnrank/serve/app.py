"""`create_app`: the FastAPI application of `dcnrank serve` — `POST /rank`,
`POST /predict`, `GET /health` — around one bundle and, optionally, the MovieLens catalog."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dcnrank import __version__
from dcnrank.bundle.bundle import Bundle
from dcnrank.limits import MAX_STRING_CHARS
from dcnrank.serve.body_limit import BodyLimit
from dcnrank.serve.errors import RequestError, error_content, key_text
from dcnrank.serve.limits import DEFAULT_TOP, MAX_BODY_BYTES, MAX_ROWS
from dcnrank.serve.ranker import Ranker
from dcnrank.serve.schemas import (
    ErrorResponse,
    HealthResponse,
    PredictRequest,
    PredictResponse,
    RankRequest,
    RankResponse,
)
from dcnrank.workflows.catalog import MovieLensCatalog

__all__ = ["create_app"]

log = logging.getLogger(__name__)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "malformed JSON"},
    413: {"model": ErrorResponse, "description": f"body over {MAX_BODY_BYTES} bytes"},
    422: {"model": ErrorResponse, "description": "a field of the wrong type, unknown, too long, or out of range"},
}


def create_app(bundle: Bundle, catalog: MovieLensCatalog | None = None) -> FastAPI:
    """Build the ranking service for `bundle`.

    Endpoints (see docs/serving.md):

    - `POST /rank` `{"user_id": 42}` or `{"user": {...features}}`, optional
      `"candidates": [movie ids]` (default: the catalog movies the user has not
      rated) and `"top": k` (default 10) -> items best first, with `unknown` values
      and `missing` features that went through the out-of-vocabulary row;
    - `POST /predict` `{"rows": [{feature: value, ...}, ...]}` -> one score per row;
    - `GET /health` -> status, model, catalog, limits and dcnrank version.

    Each request scores its rows (at most :data:`~dcnrank.serve.limits.MAX_ROWS`) in
    one forward pass. Bad input never takes the server down: malformed JSON is a 400,
    a body over :data:`~dcnrank.serve.limits.MAX_BODY_BYTES` a 413, a wrong type, an
    unknown field, a string over :data:`~dcnrank.limits.MAX_STRING_CHARS` characters
    (refused before any lookup) or a request the model cannot serve a 422, each as
    `{"error": "field: message", "errors": [{"field", "message"}, ...]}`.

    Args:
        bundle: the model.
        catalog: the MovieLens users and movies, for default candidates, known users'
            features and titles. Defaults to none: `/rank` then needs `candidates`.

    Returns:
        The ASGI app (run it with uvicorn, or :class:`dcnrank.serve.BackgroundServer`).

    Raises:
        ValueError: if `bundle` is not a Bundle or `catalog` not a MovieLensCatalog.

    Example:
        >>> from dcnrank.bundle import Bundle, BundleConfig
        >>> from dcnrank.data import Vocabulary
        >>> from dcnrank.models import DCNConfig, build_dcn
        >>> vocabularies = {"movie_id": Vocabulary.fit([1, 50]), "user_id": Vocabulary.fit([42])}
        >>> config = BundleConfig(DCNConfig(embedding_dim=2, deep_units=(4,)), ("movie_id", "user_id"), (3, 2))
        >>> bundle = Bundle(build_dcn(config.model, vocabulary_sizes=[3, 2]), config, vocabularies)
        >>> app = create_app(bundle)
        >>> sorted(route.path for route in app.routes if route.path in ("/rank", "/predict", "/health"))
        ['/health', '/predict', '/rank']
    """
    if not isinstance(bundle, Bundle):
        raise ValueError(f"`bundle` must be a dcnrank.bundle.Bundle. Received: {type(bundle).__name__}")
    if catalog is not None and not isinstance(catalog, MovieLensCatalog):
        raise ValueError(f"`catalog` must be a MovieLensCatalog or None. Received: {type(catalog).__name__}")
    ranker = Ranker(bundle, catalog)
    health = _health(bundle, catalog)
    app = FastAPI(
        title="dcnrank",
        version=__version__,
        description="Rank MovieLens movies for a user with a Deep & Cross Network bundle.",
    )
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)

    @app.post("/rank", response_model=RankResponse, responses=_ERRORS)
    def rank(request: RankRequest) -> dict[str, Any]:
        result = ranker.rank(
            user_id=request.user_id,
            user=request.user.model_dump(exclude_none=True) if request.user is not None else None,
            candidates=request.candidates,
            top=request.top if request.top is not None else DEFAULT_TOP,
        )
        return {
            "user_id": result.user_id,
            "candidates": result.candidates,
            "items": [vars(item) for item in result.items],
            "unknown": result.unknown,
            "missing": result.missing,
        }

    @app.post("/predict", response_model=PredictResponse, responses=_ERRORS)
    def predict(request: PredictRequest) -> dict[str, Any]:
        result = ranker.predict(request.rows)
        return {"scores": result.scores, "unknown": result.unknown}

    @app.get("/health", response_model=HealthResponse)
    def get_health() -> dict[str, Any]:
        return health

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = error.errors()
        if any(p.get("type") == "json_invalid" for p in problems):
            detail = next(p for p in problems if p.get("type") == "json_invalid")
            where = detail.get("loc", ("body",))
            position = f" at character {where[1]}" if len(where) > 1 else ""
            reason = (detail.get("ctx") or {}).get("error", detail.get("msg", ""))
            return _error(400, [("body", f"malformed JSON{position}: {reason}")])
        return _error(422, [(_field(p.get("loc", ())), _message(p)) for p in problems])

    @app.exception_handler(RequestError)
    async def unservable_request(_: Request, error: RequestError) -> JSONResponse:
        return _error(422, [(error.field, error.message)])

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        headers = getattr(error, "headers", None)
        if error.status_code == 400:  # FastAPI could not parse the body, though json.loads raised no syntax error
            return _error(400, [("body", _UNPARSABLE)], headers=headers)
        return _error(error.status_code, [("path", str(error.detail))], headers=headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return _error(500, [("server", f"internal error ({type(error).__name__}); see the server log")])

    return app


def _health(bundle: Bundle, catalog: MovieLensCatalog | None) -> dict[str, Any]:
    config = bundle.config
    return {
        "status": "ok",
        "dcnrank_version": __version__,
        "model": {
            "path": str(bundle.path) if bundle.path else None,
            "structure": config.model.structure,
            "features": list(config.feature_names),
            "vocabulary_sizes": list(config.vocabulary_sizes),
            "parameters": sum(p.numel() for p in bundle.model.parameters()),  # frozen: all of them
            "trained_with_dcnrank": config.dcnrank_version,
            "test_metrics": bundle.metrics.get("test", {}),
        },
        "catalog": None
        if catalog is None
        else {"users": len(catalog.users["user_id"]), "movies": len(catalog.movies["movie_id"])},
        "limits": {
            "max_rows": MAX_ROWS,
            "max_body_bytes": MAX_BODY_BYTES,
            "max_string_chars": MAX_STRING_CHARS,
            "default_top": DEFAULT_TOP,
        },
    }


_UNPARSABLE = "malformed JSON: it could not be parsed (e.g. nested too deeply, or a number of over 4300 digits)"


def _field(location: tuple | list) -> str:
    """("body", "rows", 3, "movie_id") -> "rows[3].movie_id"; each key as `key_text`
    shows it (over 100 characters cut to 100 and "…", one with a line break quoted);
    pydantic's "[key]", for a problem with the key itself, is left out: the path names the key."""
    parts = list(location[1:] if location and location[0] == "body" else location)
    text = ""
    for part in parts:
        if part == "[key]":
            continue
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        name = key_text(str(part))
        text += f".{name}" if text else name
    return text or "body"


def _message(problem: dict[str, Any]) -> str:
    message = str(problem.get("msg", "invalid")).removeprefix("Value error, ")
    if problem.get("type") in ("missing", "too_long", "too_short"):  # the message says it all
        return message
    value = problem.get("input")
    if problem.get("type") == "string_too_long" and isinstance(value, str):
        return f"{message}. Received: a str of {len(value)} characters"
    return f"{message}. Received: {value!r:.100}"


def _error(status: int, problems: list[tuple[str, str]], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=error_content(problems), headers=headers)
