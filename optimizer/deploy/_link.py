"""A shaped link on loopback: a TCP proxy with a rate limit, an added delay and byte counters.

Between a device half and a server on one machine it stands in for a narrow link: each direction
is serialised at its rate (a chunk leaves when the link is free and its bytes have been clocked
out, ``bytes x 8 / rate``) and delivered ``delay_ms`` later (half the added round trip each way).
It shapes and counts the application bytes that cross TCP (request lines, headers and payloads);
the kernel's own packet headers are not on it, but ``per_packet_overhead_bytes`` clocks that many
more bytes per packet of at most ``mss_bytes`` (a network profile's two numbers; the counters stay
application bytes). Bytes that arrive while the link is still busy fill the last queued packet
first, as they would sit in one TCP send queue, so a message written in pieces (an HTTP head and
its body) costs the packets of its size, as the study's system model counts them. Rates can change while it
runs (``set_rates``), and ``cut`` breaks every open connection (the stream's reconnect tests).
Used by the benchmarks and tests; it listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

__all__ = ["LinkCounters", "ShapedLink"]

_CHUNK = 65536


@dataclass
class LinkCounters:
    up: int = 0  # bytes from the client towards the server
    down: int = 0
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, direction: str, n: int) -> None:
        with self.lock:
            setattr(self, direction, getattr(self, direction) + n)


class ShapedLink:
    """``with ShapedLink(port, up_kbps=1000, down_kbps=1000, rtt_ms=20) as link: link.url``."""

    def __init__(
        self,
        target_port: int,
        up_kbps: float | None = None,
        down_kbps: float | None = None,
        rtt_ms: float = 0.0,
        target_host: str = "127.0.0.1",
        mss_bytes: int = 1448,
        per_packet_overhead_bytes: int = 0,
    ) -> None:
        self.target = (target_host, target_port)
        self.mss, self.packet_overhead = mss_bytes, per_packet_overhead_bytes
        self.rates = {"up": up_kbps, "down": down_kbps}
        self.delay_s = rtt_ms / 2000.0
        self.counters = LinkCounters()
        self._free_at = {"up": 0.0, "down": 0.0}
        self._room = {"up": 0, "down": 0}
        self._live: set[asyncio.StreamWriter] = set()  # both ends of every open connection
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_rates(self, up_kbps: float | None, down_kbps: float | None = None) -> None:
        """Change the link's rates from now on (None: unlimited)."""
        self.rates = {"up": up_kbps, "down": down_kbps if down_kbps is not None else up_kbps}

    def cut(self) -> None:
        """Break every open connection, as a failing link does (both peers see a reset)."""

        async def abort() -> None:
            for writer in list(self._live):
                writer.transport.abort()

        asyncio.run_coroutine_threadsafe(abort(), self._loop).result(timeout=10)

    def __enter__(self) -> ShapedLink:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._accept, "127.0.0.1", 0), self._loop
        ).result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            for writer in list(self._live):  # the pipes then end on their own
                writer.transport.abort()
            others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            _, pending = await asyncio.wait(others, timeout=5) if others else (set(), set())
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.counters.add("connections", 1)
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            return
        self._live |= {client_w, server_w}
        await asyncio.gather(
            self._pipe(client_r, server_w, "up"), self._pipe(server_r, client_w, "down"), return_exceptions=True
        )
        self._live -= {client_w, server_w}

    def _departure(self, direction: str, n: int) -> float:
        """When a chunk of ``n`` bytes arriving now has been clocked out of the link."""
        rate, now = self.rates[direction], time.monotonic()
        room = self._room[direction] if now < self._free_at[direction] else 0  # the queued packet's free bytes
        fresh = max(0, n - room)
        packets = -(-fresh // self.mss)
        self._room[direction] = room - n if fresh == 0 else packets * self.mss - fresh
        on_air = n + packets * self.packet_overhead
        start = max(now, self._free_at[direction])
        self._free_at[direction] = start + (on_air * 8 / (rate * 1000) if rate else 0.0)
        return self._free_at[direction] + self.delay_s

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str) -> None:
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

        async def deliver() -> None:
            while (item := await queue.get()) is not None:
                due, data = item
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                writer.write(data)
                await writer.drain()
            writer.close()

        sender = asyncio.ensure_future(deliver())
        try:
            while data := await reader.read(_CHUNK):
                self.counters.add(direction, len(data))
                queue.put_nowait((self._departure(direction, len(data)), data))
        except OSError:
            pass  # the connection was reset or aborted (cut(), or the link closing): the pipe ends
        finally:
            queue.put_nowait(None)
            await asyncio.gather(sender, return_exceptions=True)
