"""`ConnectionLimits`: how many connections the server holds at once and how long it waits
for a client — for a request's head, its body, and the next request on a kept-alive
connection — so that slow or idle clients cannot hold the server's sockets forever."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ConnectionLimits"]


@dataclass(frozen=True)
class ConnectionLimits:
    """The server's limits on connections (see docs/serving.md, "Connections and timeouts").

    A connection opened while `max_connections` are open is answered 503 (with
    `Connection: close`) as soon as its request head arrives. A request head (request
    line and headers) must arrive in full within `header_timeout` seconds of the
    connection opening, or of its first byte on a kept-alive connection; a body within
    `body_timeout` seconds of its head. A client that is too slow gets a 408 and the
    connection is closed (a connection that sent nothing is just closed). A kept-alive
    connection with no new request for `keep_alive_timeout` seconds is closed.

    Args:
        max_connections: int ≥ 1, the most connections open at once. Defaults to 256.
        header_timeout: seconds > 0 to receive a request head. Defaults to 10.
        body_timeout: seconds > 0 to receive a request body (at most 4 MiB). Defaults to 30.
        keep_alive_timeout: seconds > 0 an idle kept-alive connection stays open.
            Defaults to 5.

    Raises:
        ValueError: if `max_connections` is not a positive int, or a timeout is not a
            positive, finite number of seconds.

    Example:
        >>> ConnectionLimits(max_connections=64, header_timeout=2.5).header_timeout
        2.5
        >>> ConnectionLimits(body_timeout=0)
        Traceback (most recent call last):
        ...
        ValueError: `body_timeout` must be a positive, finite number of seconds. Received: body_timeout=0
    """

    max_connections: int = 256
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0

    def __post_init__(self) -> None:
        count = self.max_connections
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"`max_connections` must be a positive int. Received: max_connections={count!r}")
        for name in ("header_timeout", "body_timeout", "keep_alive_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not (0 < value < math.inf):
                raise ValueError(f"`{name}` must be a positive, finite number of seconds. Received: {name}={value!r}")
