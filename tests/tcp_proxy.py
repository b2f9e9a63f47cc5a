"""A loopback TCP proxy for tests and benchmarks: it forwards one port to another, counts the bytes
that cross it in each direction, and can cut every live connection (to test reconnects).

Bytes are counted as the proxy reads them from each socket: exactly what the application wrote to
TCP (request line and headers, WebSocket framing, payloads), without the TCP/IP headers. To shape
the link (a token bucket, a delay), override :meth:`TcpProxy.forward`, which every chunk passes
through on its way.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType

__all__ = ["TcpProxy"]

UP, DOWN = "up", "down"  # client -> server, server -> client


class TcpProxy:
    """``with TcpProxy(target_port) as proxy:`` connect to ``proxy.port`` instead of the target."""

    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.target = (host, target_port)
        self.listener = socket.create_server((host, 0))
        self.port: int = self.listener.getsockname()[1]
        self.bytes = {UP: 0, DOWN: 0}
        self.connections = 0
        self._lock = threading.Lock()
        self._live: list[socket.socket] = []
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._live += [client, server]
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, server, UP), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, DOWN), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, direction: str) -> None:
        try:
            while chunk := source.recv(65536):
                with self._lock:
                    self.bytes[direction] += len(chunk)
                self.forward(chunk, sink, direction)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def forward(self, chunk: bytes, sink: socket.socket, direction: str) -> None:
        """Pass one chunk on (the hook a shaped link overrides)."""
        sink.sendall(chunk)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self.bytes)

    def cut(self) -> None:
        """Break every live connection, as a failing link does (the peers see a reset or EOF)."""
        with self._lock:
            live, self._live = self._live, []
        for sock in live:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RDWR)  # wakes the pumps blocked in recv
                sock.close()
            except OSError:
                pass

    def close(self) -> None:
        self._closed.set()
        self.listener.close()
        self.cut()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()
