"""The device's end of the stream: one persistent WebSocket to ``split-opt serve`` (protocol in
``optimizer.protocol``), through the websocket-client library.

Frames are never lost: every payload stays in ``pending`` until its answer arrives. When the
connection fails (reset, closed by the server, timed out), the client reconnects, with growing
pauses, up to ``retries`` times in a row, and sends every unanswered payload again, in order;
answers come back in request order, so the oldest pending payload always owns the next answer.
Inference is idempotent, so a payload the server had already answered before the break is
simply answered twice. A bundle mismatch is not retried: it is the user's to fix.
"""

from __future__ import annotations

import ssl
import time
from collections import deque
from dataclasses import asdict
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import websocket

from optimizer.deploy._bundle import Bundle
from optimizer.errors import UserError
from optimizer.protocol import BUNDLE_MISMATCH, PROBE, PROBE_STATUS, STREAM_PATH, Answer, frame_bytes, parse_answer

__all__ = ["StreamServer", "stream_url"]

_BROKEN = (OSError, websocket.WebSocketException)  # a reset, a timeout, a closed socket, a bad frame
# Closes that sending the same frames again cannot cure: unsupported data, policy, message too big.
_FINAL_CLOSES = (1003, 1008, 1009)


class _Closed(Exception):
    """The server closed the connection (code, reason)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"closed with code {code}: {reason or 'no reason given'}")
        self.code = code


def stream_url(url: str, identity: str) -> str:
    """``http://host:port`` (the --url of infer) -> ``ws://host:port/v1/stream?bundle=ID``."""
    parts = urlsplit(url.rstrip("/"))
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None:
        raise UserError(f"--url must start with http:// or https:// (or ws://, wss://), got {url!r}")
    return urlunsplit((scheme, parts.netloc, parts.path + STREAM_PATH, f"bundle={identity}", ""))


def _close_of(frame: Any) -> _Closed:
    data = bytes(frame)
    code = int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
    return _Closed(code, data[2:].decode(errors="replace"))


class StreamServer:
    """The server over one WebSocket; ``send`` has RemoteServer's interface (answer, seconds)."""

    def __init__(
        self,
        url: str,
        bundle: Bundle,
        timeout_s: float = 30.0,
        retries: int = 5,
        token: str | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        """``token``: sent as ``Authorization: Bearer`` on the handshake; ``verify``: how a wss://
        server's certificate is checked (True: the system's authorities; an SSLContext: e.g. --ca-cert)."""
        self.bundle, self.timeout_s, self.retries = bundle, timeout_s, retries
        self.header = [f"Authorization: Bearer {token}"] if token else []
        self.sslopt: dict[str, Any] = {"context": verify} if isinstance(verify, ssl.SSLContext) else {}
        if verify is False:
            self.sslopt = {"cert_reqs": ssl.CERT_NONE, "check_hostname": False}
        self.url = stream_url(url, bundle.identity)
        self.pending: deque[bytes] = deque()
        self.reconnects = 0
        self._streak = 0  # reconnects since the last answer
        self.last_bytes = (0, 0)  # (up, down) of the last exchange, WebSocket framing included
        self._answer_bytes = 0
        self.ws: websocket.WebSocket | None = None
        self._connect()

    # --- the connection ----------------------------------------------------------------------
    def _open(self) -> websocket.WebSocket:
        """Connect and read the hello; a bundle mismatch becomes the user's error right away."""
        try:
            ws = websocket.create_connection(
                self.url, timeout=self.timeout_s, skip_utf8_validation=True, header=self.header, sslopt=self.sslopt
            )
        except websocket.WebSocketBadStatusException as exc:
            if exc.status_code in (401, 403):  # the server's token check refuses the handshake
                raise UserError(
                    f"the server at {self.url.split('?')[0]} refused the stream (HTTP {exc.status_code}): missing or "
                    "wrong bearer token; pass the server's token with --token-file"
                ) from exc
            raise
        opcode, data = ws.recv_data()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            closed = _close_of(data)
            ws.close()
            if closed.code == BUNDLE_MISMATCH:
                raise UserError(
                    f"the server at {self.url.split('?')[0]} refused this bundle ({closed}); serve the bundle "
                    f"this device runs ({self.bundle.root}), or copy the server's bundle here"
                )
            raise closed
        return ws

    def _connect(self) -> None:
        """(Re)connect, then send every unanswered payload again, in order."""
        for attempt in range(self.retries + 1):
            try:
                self.ws = self._open()
                for payload in self.pending:
                    self.ws.send_binary(payload)
                return
            except (*_BROKEN, _Closed) as exc:
                self._drop()
                if attempt == self.retries:
                    raise UserError(
                        f"cannot stream to {self.url.split('?')[0]} ({type(exc).__name__}: {exc}) after "
                        f"{self.retries + 1} attempts; start it with `split-opt serve deploy/NAME` or pass --url"
                    ) from exc
                time.sleep(min(2.0, 0.05 * 2**attempt))

    def _drop(self) -> None:
        if self.ws is not None:
            self.ws.shutdown()  # a broken connection gets no closing handshake
        self.ws = None

    def _reconnect(self) -> None:
        self._drop()
        self.reconnects += 1
        self._streak += 1
        if self._streak > self.retries:
            raise UserError(
                f"the stream to {self.url.split('?')[0]} broke {self._streak} times without an answer in between; "
                "check the server's log"
            )
        self._connect()

    # --- frames ------------------------------------------------------------------------------
    def submit(self, payload: bytes) -> None:
        """Send one payload without waiting for its answer (answers come back in order)."""
        self.pending.append(payload)
        try:
            assert self.ws is not None
            self.ws.send_binary(payload)
        except _BROKEN:
            self._reconnect()  # resends it with every other unanswered payload

    def receive(self) -> Answer:
        """The answer to the oldest unanswered payload (reconnecting and resending as needed)."""
        if not self.pending:
            raise RuntimeError("receive() without an unanswered payload")
        while True:
            try:
                assert self.ws is not None
                opcode, data = self.ws.recv_data()
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    raise _close_of(data)
                message = data.decode() if opcode == websocket.ABNF.OPCODE_TEXT else bytes(data)
                answer = parse_answer(message)
                self._answer_bytes = frame_bytes(len(data), masked=False)
            except _Closed as closed:
                if closed.code in _FINAL_CLOSES:
                    raise UserError(f"the server at {self.url.split('?')[0]} ended the stream: {closed}") from closed
                self._reconnect()
                continue
            except (*_BROKEN, ValueError):
                self._reconnect()
                continue
            self.pending.popleft()
            self._streak = 0
            return answer

    def send(self, payload: bytes) -> tuple[dict[str, Any], float]:
        """One payload -> (its answer as the HTTP route's JSON has it, round-trip seconds)."""
        start = time.perf_counter()
        self.submit(payload)
        answer = self.receive()
        elapsed = time.perf_counter() - start
        self.last_bytes = (frame_bytes(len(payload)), self._answer_bytes)
        if answer.status != 200:
            raise UserError(f"the server at {self.url.split('?')[0]} answered {answer.status}: {answer.detail}")
        doc = {k: v for k, v in asdict(answer).items() if k not in ("status", "detail")}
        return {**doc, "label": self.bundle.classes[answer.class_index], "payload_bytes": len(payload)}, elapsed

    def probe(self) -> float:
        """The round trip of a probe: an empty message, answered by an empty one along the same path
        as a payload (6 bytes up, 2 down, in ``last_bytes``)."""
        start = time.perf_counter()
        self.submit(PROBE)
        answer = self.receive()
        elapsed = time.perf_counter() - start
        if answer.status != PROBE_STATUS:
            raise UserError(
                f"the server at {self.url.split('?')[0]} answered a probe with {answer.status} ({answer.detail}); "
                "update it (split-opt serve) to this version"
            )
        self.last_bytes = (frame_bytes(0), self._answer_bytes)
        return elapsed

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
            self.ws = None
