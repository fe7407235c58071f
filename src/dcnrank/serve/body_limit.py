"""`BodyLimit`: ASGI middleware that refuses request bodies over a size cap before they
are read (413), and bodies of unknown length (411)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from dcnrank.serve.errors import send_error

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
            await send_error(send, 411, "body", "send a Content-Length header (chunked bodies are not accepted)")
            return
        try:
            size = int(length)
        except ValueError:
            received = length.decode("latin-1")
            await send_error(send, 400, "body", f"Content-Length must be an integer. Received: {received!r:.100}")
            return
        if size > self.max_bytes:
            await send_error(send, 413, "body", f"at most {self.max_bytes} bytes. Received: Content-Length {size}")
            return
        await self.app(scope, receive, send)
