"""The service's errors: `RequestError` (a request that is well-formed JSON of the right
types, but asks for something this model or catalog cannot do; HTTP 422), and the one
JSON shape every error response has, whichever layer sends it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from dcnrank.config.errors import MAX_LISTED

__all__ = ["MAX_KEY_CHARS", "RequestError", "error_content", "key_text", "send_error"]

# The longest a request's own key (an unknown field, a feature name) is echoed in a field
# path: a key may be as long as the body.
MAX_KEY_CHARS = 100


class RequestError(ValueError):
    """A problem with one field of a request.

    Args:
        field: where in the request, as a path (`"candidates"`, `"rows[3].item_id"`,
            `"user.user_zip_code"`).
        message: what is wrong, with the received value echoed.

    Example:
        >>> str(RequestError("top", "must be a positive int. Received: top=0"))
        'top: must be a positive int. Received: top=0'
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def key_text(key: str) -> str:
    r"""A key of the request as a field path shows it: as it is, or as its `repr` when it
    holds a line break or another unprintable character (an answer, like a log line, stays
    one line), cut to :data:`MAX_KEY_CHARS` characters and "…".

    Example:
        >>> key_text("item_id"), key_text("a\nb"), len(key_text("k" * 5000))
        ('item_id', "'a\\nb'", 101)
    """
    text = key if key.isprintable() else repr(key)
    return text if len(text) <= MAX_KEY_CHARS else text[:MAX_KEY_CHARS] + "…"


def error_content(problems: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The body of every error response: the first problem as one line, and the first
    :data:`~dcnrank.config.errors.MAX_LISTED` of them, then (field `"body"`) how many more
    there are: 10,000 bad rows make one short answer, not a megabyte.

    Args:
        problems: (field, message) pairs, at least one; the field is a path such as
            `"rows[2].item_id"`, `"body"` or `"server"`.

    Returns:
        `{"error": "field: message", "errors": [{"field", "message"}, ...]}`.

    Raises:
        ValueError: if `problems` is empty.

    Example:
        >>> error_content([("top", "must be positive")])
        {'error': 'top: must be positive', 'errors': [{'field': 'top', 'message': 'must be positive'}]}
        >>> error_content([(f"rows[{i}]", "bad") for i in range(100)])["errors"][-1]
        {'field': 'body', 'message': '... and 80 more problems'}
    """
    if len(problems) == 0:
        raise ValueError("`problems` must hold at least one (field, message) pair. Received: []")
    field, message = problems[0]
    listed = [{"field": f, "message": m} for f, m in problems[:MAX_LISTED]]
    if len(problems) > MAX_LISTED:
        listed.append({"field": "body", "message": f"... and {len(problems) - MAX_LISTED} more problems"})
    return {"error": f"{field}: {message}", "errors": listed}


async def send_error(
    send: Any, status: int, field: str, message: str, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """Send a whole JSON error response through an ASGI `send`, for the layers below
    FastAPI's exception handlers (middleware, the connection cap).

    Args:
        send: the ASGI send callable.
        status: the HTTP status.
        field: where the problem is (`"body"`, `"server"`).
        message: what is wrong.
        headers: extra response headers, e.g. `[(b"connection", b"close")]`.

    Example:
        >>> import asyncio
        >>> sent = []
        >>> async def send(message):
        ...     sent.append(message)
        >>> asyncio.run(send_error(send, 413, "body", "too big"))
        >>> sent[0]["status"], sent[1]["body"]
        (413, b'{"error": "body: too big", "errors": [{"field": "body", "message": "too big"}]}')
    """
    body = json.dumps(error_content([(field, message)])).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
