"""Running the app with uvicorn on a socket bound first: `bind_socket` (port 0 picks a
free port, known before the server starts) and `BackgroundServer` (a real server on a
thread, for tests and in-process use)."""

from __future__ import annotations

import errno
import logging
import socket
import threading
from types import TracebackType
from typing import Any

from dcnrank.serve.connection_limits import ConnectionLimits
from dcnrank.serve.protocol import GuardedProtocol

__all__ = ["BackgroundServer", "bind_socket", "make_server"]

log = logging.getLogger(__name__)


def bind_socket(host: str = "127.0.0.1", port: int = 8000) -> socket.socket:
    """A listening TCP socket on `host:port`; `port=0` lets the system pick a free one.

    Connections made once it listens wait in the kernel's backlog until the server
    accepts them, so a client may connect as soon as this returns. A host name is
    resolved first, and the socket listens on its first address.

    Args:
        host: the address or host name to listen on. Defaults to 127.0.0.1 (this
            machine only).
        port: int in 0..65535. Defaults to 8000.

    Returns:
        The socket; `sock.getsockname()[1]` is the port.

    Raises:
        ValueError: if `host` is not a str or `port` is out of range.
        OSError: one line naming `host:port` and the cause, if the host name does not
            resolve or the address cannot be bound (the port is taken, the address is
            not this machine's, the port needs privileges).

    Example:
        >>> sock = bind_socket("127.0.0.1", 0)
        >>> sock.getsockname()[1] > 0
        True
        >>> sock.close()
    """
    if not isinstance(host, str):
        raise ValueError(f"`host` must be a str. Received: host={host!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"`port` must be an int in 0..65535. Received: port={port!r}")
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        family, _, _, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as error:
        cause = error.strerror if isinstance(error, socket.gaierror) else str(error)
        raise OSError(f"cannot listen on {where}: the host {host!r} does not resolve ({cause})") from error
    # proto=IPPROTO_TCP (not 0) matters: asyncio turns Nagle's algorithm off only on
    # sockets that say they are TCP; with it on, a keep-alive response's second write
    # waits for the client's delayed ACK, ~40 ms per request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as error:
        sock.close()
        cause = _BIND_ERRORS.get(error.errno or 0) or error.strerror or str(error)
        raise OSError(f"cannot listen on {where}: {cause}") from error
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


_BIND_ERRORS = {
    errno.EADDRINUSE: "the port is already in use (another server?); choose another port, or 0 for a free one",
    errno.EADDRNOTAVAIL: "the address is not one of this machine's (try 127.0.0.1 or 0.0.0.0)",
    errno.EACCES: "permission denied (ports below 1024 need privileges; choose another port)",
}


def make_server(
    app: Any, *, limits: ConnectionLimits | None = None, access_log: bool = False, log_level: str = "info"
) -> Any:
    """A `uvicorn.Server` for `app` (run it with `server.run(sockets=[sock])`), whose
    connections follow `limits` (see :class:`~dcnrank.serve.protocol.GuardedProtocol`).

    Args:
        app: the ASGI app, e.g. from :func:`dcnrank.serve.create_app`.
        limits: the connection cap and timeouts. Defaults to `ConnectionLimits()`.
        access_log: log one line per request. Defaults to `False` (it costs throughput).
        log_level: uvicorn's log level. Defaults to `"info"`.

    Returns:
        The server, not yet started.

    Raises:
        ValueError: if `limits` is not a ConnectionLimits.

    Example:
        >>> type(make_server(lambda scope, receive, send: None)).__name__
        'Server'
    """
    import uvicorn

    protocol = GuardedProtocol.with_limits(ConnectionLimits() if limits is None else limits)
    config = uvicorn.Config(
        app, http=protocol, ws="none", access_log=access_log, log_level=log_level, timeout_graceful_shutdown=5
    )
    return uvicorn.Server(config)


class BackgroundServer:
    """A real uvicorn server for `app` on a thread, on 127.0.0.1 and a free port.

    Use it as a context manager: requests may be sent as soon as it is entered (the
    socket already listens), and leaving it shuts the server down and joins the thread.

    Args:
        app: the ASGI app.
        host: the address. Defaults to 127.0.0.1.
        port: the port; 0 (the default) picks a free one.
        limits: the connection cap and timeouts. Defaults to `ConnectionLimits()`.

    Example:
        >>> from dcnrank.bundle import Bundle
        >>> from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec
        >>> from dcnrank.data.encoding.table_encoder import TableEncoder
        >>> from dcnrank.models import DCNConfig
        >>> from dcnrank.models.table_inputs import build_table_dcn
        >>> spec = FeatureSpec((CategoricalColumn("u"), CategoricalColumn("i")), label="y", task="binary")
        >>> encoder = TableEncoder.fit(spec, {"u": [1, 2], "i": ["a", "b"], "y": [0, 1]})
        >>> config = DCNConfig(structure="cross_only", embedding_dim=2)
        >>> bundle = Bundle(build_table_dcn(config, spec, encoder.table_sizes), config, encoder)
        >>> import urllib.request
        >>> from dcnrank.serve import create_app
        >>> with BackgroundServer(create_app(bundle)) as server:
        ...     urllib.request.urlopen(server.url + "/health").status
        200
    """

    def __init__(
        self, app: Any, host: str = "127.0.0.1", port: int = 0, limits: ConnectionLimits | None = None
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.limits = limits
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        """`http://host:port` of the running server."""
        if self._socket is None:
            raise ValueError("the server is not running; use `with BackgroundServer(app) as server:`")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._socket.getsockname()[1]}"

    def __enter__(self) -> BackgroundServer:
        self._socket = bind_socket(self.host, self.port)
        self._server = make_server(self.app, limits=self.limits, log_level="warning")
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="dcnrank-serve", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=30)
            if self._thread.is_alive():
                log.warning("the dcnrank server thread did not stop within 30 s")
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
