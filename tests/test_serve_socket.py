"""The service's listening socket: TCP with Nagle's algorithm off (keep-alive latency)."""

import socket

from dcnrank.serve.server import bind_socket


def test_bind_socket_is_tcp_with_nodelay():
    sock = bind_socket("127.0.0.1", 0)
    try:
        # asyncio only disables Nagle on accepted sockets whose proto says TCP; without
        # it every keep-alive response waited ~40 ms for the client's delayed ACK.
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert sock.getsockname()[1] > 0
    finally:
        sock.close()
