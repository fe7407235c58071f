"""`create_app`: the FastAPI application of `dcnrank serve` — `POST /rank`,
`POST /predict`, `GET /health` — around one bundle: its request and response schemas
derived from its spec, `/rank` served by the one ranking core
`dcnrank.bundle.ranking.rank_items` from the catalogue in the bundle."""

from __future__ import annotations

import logging
import re
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dcnrank import __version__
from dcnrank.bundle.bundle import Bundle
from dcnrank.bundle.ranking import RankingError, rank_items
from dcnrank.data.encoding.table_error import TableDataError
from dcnrank.data.encoding.vocabulary import OOV_INDEX
from dcnrank.data.spec.feature_spec import MultiHotColumn
from dcnrank.limits import MAX_STRING_CHARS
from dcnrank.serve.body_limit import BodyLimit
from dcnrank.serve.errors import RequestError, error_content, key_text
from dcnrank.serve.limits import DEFAULT_TOP, MAX_BODY_BYTES, MAX_ROWS
from dcnrank.serve.schemas import ErrorResponse, HealthResponse, service_schemas

__all__ = ["create_app"]

log = logging.getLogger(__name__)

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "malformed JSON"},
    413: {"model": ErrorResponse, "description": f"body over {MAX_BODY_BYTES} bytes"},
    422: {"model": ErrorResponse, "description": "a field of the wrong type, unknown, too long, or out of range"},
}


def create_app(bundle: Bundle) -> FastAPI:
    """Build the ranking service for `bundle`.

    Endpoints (see docs/serving.md), with schemas derived from the bundle's spec
    (:func:`~dcnrank.serve.schemas.service_schemas`):

    - `POST /rank` `{"user_id": ID}`, optional `"user": {user column: value}`,
      `"context": {other column: value}`, `"candidates": [item ids]` (default: the
      catalogue's items the user did not interact with in the training rows) and
      `"top": k` (default 10) -> items best first (`rank`, `score`, `item` columns),
      with the `unknown` values, the `missing` columns and `notices`, as
      `dcnrank.bundle.ranking.rank_items` returns them (what `dcnrank recommend` prints);
    - `POST /predict` `{"rows": [{input column: value, ...}, ...]}` -> one score per row
      (a probability for a binary task); an absent column is missing;
    - `GET /health` -> status, model, catalogue, limits and dcnrank version.

    Each request scores its rows (at most :data:`~dcnrank.serve.limits.MAX_ROWS`) in
    one forward pass. Bad input never takes the server down: malformed JSON is a 400,
    a body over :data:`~dcnrank.serve.limits.MAX_BODY_BYTES` a 413, a wrong type, an
    unknown field, a string over :data:`~dcnrank.limits.MAX_STRING_CHARS` characters
    (refused before any lookup) or a request the model cannot serve a 422, each as
    `{"error": "field: message", "errors": [{"field", "message"}, ...]}`.

    Args:
        bundle: the model, its catalogue inside (`dcnrank.bundle.load`).

    Returns:
        The ASGI app (run it with uvicorn, or :class:`dcnrank.serve.BackgroundServer`).

    Raises:
        ValueError: if `bundle` is not a `dcnrank.bundle.Bundle`.

    Example:
        >>> from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec
        >>> from dcnrank.data.encoding.table_encoder import TableEncoder
        >>> from dcnrank.models import DCNConfig
        >>> from dcnrank.models.table_inputs import build_table_dcn
        >>> spec = FeatureSpec((CategoricalColumn("u"), CategoricalColumn("i")), label="y", task="binary",
        ...                    user="u", item="i")
        >>> encoder = TableEncoder.fit(spec, {"u": [1, 2], "i": ["a", "b"], "y": [0, 1]})
        >>> config = DCNConfig(structure="cross_only", embedding_dim=2)
        >>> app = create_app(Bundle(build_table_dcn(config, spec, encoder.table_sizes), config, encoder))
        >>> sorted(route.path for route in app.routes if route.path in ("/rank", "/predict", "/health"))
        ['/health', '/predict', '/rank']
    """
    if not isinstance(bundle, Bundle):
        raise ValueError(f"`bundle` must be a dcnrank.bundle.Bundle. Received: {type(bundle).__name__}")
    app = _new_app("Rank catalogue items for a user with a Deep & Cross Network bundle.")
    _routes(app, bundle)
    _error_handlers(app)
    return app


def _new_app(description: str) -> FastAPI:
    app = FastAPI(title="dcnrank", version=__version__, description=description)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    return app


def _routes(app: FastAPI, bundle: Bundle) -> None:
    """`/rank`, `/predict` and `/health` of `bundle`, their bodies typed by its spec."""
    schemas = service_schemas(bundle)
    health = _health(bundle)

    def rank(request: Any) -> dict[str, Any]:
        user = getattr(request, "user", None)
        context = getattr(request, "context", None)
        ranking = rank_items(
            bundle,
            request.user_id,
            user=user.model_dump(by_alias=True, exclude_none=True) if user is not None else None,
            context=context.model_dump(by_alias=True, exclude_none=True) if context is not None else None,
            candidates=request.candidates,
            top=request.top if request.top is not None else DEFAULT_TOP,
        )
        return ranking.to_dict()

    def predict(request: Any) -> dict[str, Any]:
        return _predict_rows(bundle, [row.model_dump(by_alias=True) for row in request.rows])

    # The request models are made at run time: FastAPI reads them from the annotations.
    rank.__annotations__ = {"request": schemas.rank_request, "return": dict[str, Any]}
    predict.__annotations__ = {"request": schemas.predict_request, "return": dict[str, Any]}
    app.post("/rank", response_model=schemas.rank_response, responses=_ERRORS)(rank)
    app.post("/predict", response_model=schemas.predict_response, responses=_ERRORS)(predict)

    @app.get("/health", response_model=HealthResponse)
    def get_health() -> dict[str, Any]:
        return health


def _predict_rows(bundle: Bundle, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Scores of explicit rows (input column -> raw value, None missing), in one pass, and
    the category values scored through the OOV row."""
    spec = bundle.spec
    columns = {name: [row.get(name) for row in rows] for name in spec.input_names}
    for column in spec.of_type("multi_hot"):  # text or a list per row: one form for the encoder
        separator = cast(MultiHotColumn, column).separator
        columns[column.name] = [
            [item for item in value.split(separator) if item] if isinstance(value, str) else value
            for value in columns[column.name]
        ]
    try:
        encoded = bundle.encode(columns, source="the request's rows")
    except TableDataError as error:
        raise RequestError("rows", str(error)) from None
    except (TypeError, ValueError) as error:  # Arrow: one column of ints and strings
        raise RequestError("rows", f"each column must hold values of one kind ({error})") from None
    scores = bundle.predictions(encoded, batch_size=len(rows))
    unknown: dict[str, list[Any]] = {}
    categorical = encoded.features.categorical
    for j, column in enumerate(spec.of_type("categorical")):
        if column.name not in bundle.encoder.vocabularies:  # hashed: every value has a row
            continue
        values = columns[column.name]
        oov = [values[i] for i in (categorical[:, j] == OOV_INDEX).nonzero().flatten().tolist()]
        oov = [value for value in dict.fromkeys(oov) if value is not None]
        if oov:
            unknown[column.name] = oov
    return {"scores": scores.tolist(), "unknown": unknown}


def _error_handlers(app: FastAPI) -> None:
    """Every error as `{"error", "errors"}`: 400 malformed JSON, 422 a wrong field or an
    unservable request, the HTTP errors as they are, 500 (logged) for anything else."""

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

    @app.exception_handler(RankingError)
    async def unrankable_request(_: Request, error: RankingError) -> JSONResponse:
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


def _limits() -> dict[str, Any]:
    return {
        "max_rows": MAX_ROWS,
        "max_body_bytes": MAX_BODY_BYTES,
        "max_string_chars": MAX_STRING_CHARS,
        "default_top": DEFAULT_TOP,
    }


def _health(bundle: Bundle) -> dict[str, Any]:
    spec, catalog = bundle.spec, bundle.catalog
    return {
        "status": "ok",
        "dcnrank_version": __version__,
        "model": {
            "path": str(bundle.path) if bundle.path else None,
            "structure": bundle.model_config.structure,
            "task": spec.task,
            "columns": list(spec.input_names),
            "user": spec.user,
            "item": spec.item,
            "table_sizes": bundle.encoder.table_sizes,
            "parameters": sum(p.numel() for p in bundle.model.parameters()),  # frozen: all of them
            "trained_with_dcnrank": bundle.dcnrank_version,
            "validation_metrics": bundle.metrics.get("validation", {}),
        },
        "catalog": None if catalog is None else {"users": catalog.num_users, "items": catalog.num_items},
        "limits": _limits(),
    }


_UNPARSABLE = "malformed JSON: it could not be parsed (e.g. nested too deeply, or a number of over 4300 digits)"


# The members of a union (a multi-hot value: text or a list of text) that pydantic names in a
# location, e.g. "list[constrained-str]": not fields of the request.
_PYDANTIC_TAG = re.compile(
    r"(list|tuple|set|function-[a-z]+|lax-or-strict|json-or-python|nullable)\[.*\]|constrained-\w+"
)


def _field(location: tuple | list) -> str:
    """("body", "rows", 3, "item_id") -> "rows[3].item_id"; each key as `key_text`
    shows it (over 100 characters cut to 100 and "…", one with a line break quoted);
    pydantic's "[key]", for a problem with the key itself, is left out: the path names the key."""
    parts = list(location[1:] if location and location[0] == "body" else location)
    text = ""
    for part in parts:
        if part == "[key]" or (isinstance(part, str) and _PYDANTIC_TAG.fullmatch(part)):
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
