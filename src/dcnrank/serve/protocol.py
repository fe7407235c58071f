"""`GuardedProtocol`: uvicorn's h11 HTTP/1.1 protocol with the limits of
:class:`~dcnrank.serve.connection_limits.ConnectionLimits` — a cap on open connections,
and deadlines for a request's head and body that uvicorn does not have."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, ClassVar, cast

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from dcnrank.serve.connection_limits import ConnectionLimits
from dcnrank.serve.errors import error_content, send_error

__all__ = ["GuardedProtocol"]

log = logging.getLogger(__name__)


class GuardedProtocol(H11Protocol):
    """One HTTP/1.1 connection of the server, bounded in number and in time.

    uvicorn (as of 0.54) closes a kept-alive connection after `timeout_keep_alive`,
    but waits forever for a request head or body that never completes, and never
    closes a connection that sends nothing; its `limit_concurrency` also counts the
    connection asking, so a cap of N serves N-1. This protocol keeps one deadline per
    connection:

    - from the connection opening (or its first byte after a response) until the
      request head is complete: `header_timeout`;
    - from the head until the body is complete: `body_timeout`;
    - between requests on a kept-alive connection: `keep_alive_timeout` (uvicorn's timer).

    On a missed deadline the client gets `408 Request Timeout` (or, if it sent nothing,
    nothing) and the connection is closed. A connection opened while
    `max_connections` are already open is answered `503` with `Connection: close` as
    soon as its request head arrives.

    Use :meth:`with_limits` to get the class to give uvicorn (`uvicorn.Config(app,
    http=GuardedProtocol.with_limits(limits))`); :func:`dcnrank.serve.make_server` does.

    Example:
        >>> protocol = GuardedProtocol.with_limits(ConnectionLimits(max_connections=8))
        >>> issubclass(protocol, GuardedProtocol), protocol.limits.max_connections
        (True, 8)
    """

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()

    @classmethod
    def with_limits(cls, limits: ConnectionLimits) -> type[GuardedProtocol]:
        """This protocol with `limits` (a subclass, as uvicorn builds the protocol itself).

        Args:
            limits: the connection cap and timeouts.

        Returns:
            The protocol class for `uvicorn.Config(http=...)`.

        Raises:
            ValueError: if `limits` is not a ConnectionLimits.
        """
        if not isinstance(limits, ConnectionLimits):
            raise ValueError(f"`limits` must be a ConnectionLimits. Received: {type(limits).__name__}")
        return cast(type[GuardedProtocol], type(cls.__name__, (cls,), {"limits": limits}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout_keep_alive = self.limits.keep_alive_timeout  # type: ignore[assignment]
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_for: str | None = None  # "head", "body" or None
        self._first_head = True  # no request head received on this connection yet

    # ------------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # counts this connection in `self.connections`
        if len(self.connections) > self.limits.max_connections:
            self.app = _over_capacity(self.limits.max_connections)
            log.info("%s connections open, over the cap of %s: answering 503", len(self.connections),
                     self.limits.max_connections)  # fmt: skip
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._set_deadline(None)
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    # ------------------------------------------------------------- deadlines

    def _watch(self) -> None:
        """Arm the deadline of what the connection now waits for from the client."""
        if self.transport is None or self.transport.is_closing():
            self._set_deadline(None)
            return
        state = self.conn.their_state
        if state is not h11.IDLE:
            self._first_head = False
        if state is h11.SEND_BODY:
            self._set_deadline("body")
        elif state is h11.IDLE and (self._first_head or self.conn.trailing_data[0]):
            self._set_deadline("head")  # a new connection, or part of a head after a response
        else:  # a request being answered, or an idle kept-alive connection (uvicorn's timer)
            self._set_deadline(None)

    def _set_deadline(self, waiting_for: str | None) -> None:
        if waiting_for == self._waiting_for:
            return  # the deadline runs from when the wait began, not from the last byte
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._waiting_for = waiting_for
        if waiting_for is not None:
            seconds = self.limits.header_timeout if waiting_for == "head" else self.limits.body_timeout
            self._deadline = self.loop.call_later(seconds, self._timed_out)

    def _timed_out(self) -> None:
        waiting_for, self._deadline, self._waiting_for = self._waiting_for, None, None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if waiting_for == "head" and self._first_head and not self.conn.trailing_data[0]:
            log.debug("%s sent nothing within %g s: closing", self._peer(), self.limits.header_timeout)
            self.transport.close()
            return
        answered = waiting_for == "body" and cycle is not None and cycle.response_started
        if not answered:
            if waiting_for == "head":
                message = f"request head not received in full within {self.limits.header_timeout:g} s"
            else:
                message = f"not received in full within {self.limits.body_timeout:g} s"
            self.transport.write(_timeout_response("head" if waiting_for == "head" else "body", message))
            log.debug("%s: %s; answered 408 and closed", self._peer(), message)
        if cycle is not None and not cycle.response_complete:
            # The app may still be waiting for the body: it now receives a disconnect,
            # and nothing it sends reaches the closing transport.
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "a client"


def _timeout_response(field: str, message: str) -> bytes:
    """A whole `408 Request Timeout` response, written as raw bytes: the head may be
    incomplete, so h11 has no request to answer, and the connection closes after it."""
    body = json.dumps(error_content([(field, message)])).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def _over_capacity(max_connections: int) -> Any:
    """The ASGI app that answers every request of a connection over the cap."""

    async def refuse(scope: Any, receive: Any, send: Any) -> None:
        await send_error(
            send, 503, "server", f"at most {max_connections} connections are served at once; try again later",
            headers=[(b"connection", b"close"), (b"retry-after", b"1")],
        )  # fmt: skip

    return refuse
