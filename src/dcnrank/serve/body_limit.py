"""`BodyLimit`: ASGI middleware that refuses request bodies over a size cap before they
are read (413), and bodies of unknown length (411)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["BodyLimit"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


class BodyLimit:
    """Answer 413 to a request whose `Content-Length` exceeds `max_bytes`, and 411 to a
    POST without one (a chunked upload), so no handler ever reads an unbounded body.

    Args:
        app: the ASGI app to protect.
        max_bytes: int ≥ 1, the largest body accepted.

    Raises:
        ValueError: if `max_bytes` is not a positive int.

    Example:
        >>> from fastapi import FastAPI
        >>> app = FastAPI()
        >>> app.add_middleware(BodyLimit, max_bytes=1024)
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError(f"`max_bytes` must be a positive int. Received: max_bytes={max_bytes!r}")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is None:
            await _reply(send, 411, "body: send a Content-Length header (chunked bodies are not accepted)")
            return
        try:
            size = int(length)
        except ValueError:
            await _reply(send, 400, f"body: Content-Length must be an integer. Received: {length.decode('latin-1')!r}")
            return
        if size > self.max_bytes:
            await _reply(send, 413, f"body: at most {self.max_bytes} bytes. Received: Content-Length {size}")
            return
        await self.app(scope, receive, send)


async def _reply(send: Any, status: int, message: str) -> None:
    field, _, text = message.partition(": ")
    body = json.dumps({"error": message, "errors": [{"field": field, "message": text}]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
