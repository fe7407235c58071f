"""Running the app with uvicorn on a socket bound first: `bind_socket` (port 0 picks a
free port, known before the server starts) and `BackgroundServer` (a real server on a
thread, for tests and in-process use)."""

from __future__ import annotations

import logging
import socket
import threading
from types import TracebackType
from typing import Any

__all__ = ["BackgroundServer", "bind_socket", "make_server"]

log = logging.getLogger(__name__)


def bind_socket(host: str = "127.0.0.1", port: int = 8000) -> socket.socket:
    """A listening TCP socket on `host:port`; `port=0` lets the system pick a free one.

    Connections made once it listens wait in the kernel's backlog until the server
    accepts them, so a client may connect as soon as this returns.

    Args:
        host: the address to listen on. Defaults to 127.0.0.1 (this machine only).
        port: int in 0..65535. Defaults to 8000.

    Returns:
        The socket; `sock.getsockname()[1]` is the port.

    Raises:
        ValueError: if `port` is out of range.
        OSError: if the address cannot be bound (e.g. the port is taken).

    Example:
        >>> sock = bind_socket("127.0.0.1", 0)
        >>> sock.getsockname()[1] > 0
        True
        >>> sock.close()
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"`port` must be an int in 0..65535. Received: port={port!r}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP (not 0) matters: asyncio turns Nagle's algorithm off only on
    # sockets that say they are TCP; with it on, a keep-alive response's second write
    # waits for the client's delayed ACK, ~40 ms per request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def make_server(app: Any, *, access_log: bool = False, log_level: str = "info") -> Any:
    """A `uvicorn.Server` for `app` (run it with `server.run(sockets=[sock])`).

    Args:
        app: the ASGI app, e.g. from :func:`dcnrank.serve.create_app`.
        access_log: log one line per request. Defaults to `False` (it costs throughput).
        log_level: uvicorn's log level. Defaults to `"info"`.

    Returns:
        The server, not yet started.

    Example:
        >>> type(make_server(lambda scope, receive, send: None)).__name__
        'Server'
    """
    import uvicorn

    config = uvicorn.Config(app, access_log=access_log, log_level=log_level, timeout_graceful_shutdown=5)
    return uvicorn.Server(config)


class BackgroundServer:
    """A real uvicorn server for `app` on a thread, on 127.0.0.1 and a free port.

    Use it as a context manager: requests may be sent as soon as it is entered (the
    socket already listens), and leaving it shuts the server down and joins the thread.

    Args:
        app: the ASGI app.
        host: the address. Defaults to 127.0.0.1.
        port: the port; 0 (the default) picks a free one.

    Example:
        >>> from dcnrank.bundle import Bundle, BundleConfig
        >>> from dcnrank.data import Vocabulary
        >>> from dcnrank.models import DCNConfig, build_dcn
        >>> vocabularies = {"movie_id": Vocabulary.fit([1, 50]), "user_id": Vocabulary.fit([42])}
        >>> config = BundleConfig(DCNConfig(embedding_dim=2, deep_units=(4,)), ("movie_id", "user_id"), (3, 2))
        >>> bundle = Bundle(build_dcn(config.model, vocabulary_sizes=[3, 2]), config, vocabularies)
        >>> import urllib.request
        >>> from dcnrank.serve import create_app
        >>> with BackgroundServer(create_app(bundle)) as server:
        ...     urllib.request.urlopen(server.url + "/health").status
        200
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
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
        self._server = make_server(self.app, log_level="warning")
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
