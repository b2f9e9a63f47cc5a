"""The bytes a transport adds to a payload, as the device half really sends them.

HTTP (``split-opt infer --url``): one POST per inference over a kept-alive connection. The request
line and headers are built here exactly as the client builds them (httpx's defaults, the content
type, the bundle identity header (64 hex characters) and the bearer token that `split-opt serve`
requires off loopback), so their length is
counted, not guessed; tests/test_transport.py checks it against
the bytes a loopback socket receives. The answer is a JSON object behind uvicorn's status line and
headers; its size is the one measured there (``HTTP_ANSWER_BYTES``). Connection set-up (TCP and TLS
handshakes) is paid once per connection and not counted per inference.

The stream (``split-opt infer --stream``): one persistent WebSocket; each inference is one binary
message (RFC 6455 framing: a 2-byte header, 2 or 8 more for payloads of 126 bytes or more, and the
client's 4-byte mask key) answered by one 6-byte binary message (class index, score, server time)
behind a 2-byte header; the token travels once, with the connection's handshake.

Packets carry at most the link's MSS of these bytes and each adds the link's per-packet headers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import httpx

from optimizer.config import Network
from optimizer.protocol import ANSWER_BYTES as STREAM_ANSWER_BYTES  # class index, score, server ms
from optimizer.protocol import CONTENT_TYPE, INFER_PATH, frame_bytes, request_headers

__all__ = [
    "CONTENT_TYPE",
    "STREAM_ANSWER_BYTES",
    "TRANSPORTS",
    "HTTP_ANSWER_BYTES",
    "INFER_PATH",
    "LinkBytes",
    "http_request_bytes",
    "link_bytes",
    "request_headers",
    "stream_frame_bytes",
]

# Status line, date, server, content-length and content-type headers (125 B) plus the JSON answer
# (class_index, label, score, payload_bytes, server_ms: about 95 B), measured in tests/test_transport.py.
HTTP_ANSWER_BYTES = 220
DEFAULT_HOST = "192.168.1.20:8000"  # a LAN address and port: the Host header's length
IDENTITY_CHARS = 64
TOKEN_CHARS = 43  # secrets.token_urlsafe(32), the token the README's serve example makes
TRANSPORTS = ("http", "stream")


@cache
def _head_bytes(host: str, token_chars: int) -> int:
    auth = {"authorization": "Bearer " + "t" * token_chars} if token_chars else {}
    with httpx.Client(headers=auth) as client:  # as RemoteServer builds its client
        headers = request_headers("0" * IDENTITY_CHARS)  # a SHA-256 in hex, as every bundle's
        request = client.build_request("POST", f"http://{host}{INFER_PATH}", content=b"", headers=headers)
    lines = [f"POST {INFER_PATH} HTTP/1.1".encode()]
    lines += [name + b": " + value for name, value in request.headers.raw if name.lower() != b"content-length"]
    return sum(len(line) + 2 for line in lines) + 2  # CRLF after each line, then the blank line


def http_request_bytes(payload_bytes: int, host: str = DEFAULT_HOST, token_chars: int = TOKEN_CHARS) -> int:
    """Request line + headers (with this payload's Content-Length and, as `serve` requires off
    loopback, a bearer token of ``token_chars``; 0: none) + the payload itself."""
    return _head_bytes(host, token_chars) + len(f"content-length: {payload_bytes}\r\n") + payload_bytes


@dataclass(frozen=True)
class LinkBytes:
    """What crosses the link for one inference, application bytes and packet headers included."""

    up: float  # device -> server
    down: float  # server -> device (the answer)

    @property
    def total(self) -> float:
        return self.up + self.down


def _on_air(app_bytes: float, network: Network) -> float:
    packets = max(1, math.ceil(app_bytes / network.mss_bytes.value))
    return app_bytes + packets * network.per_packet_overhead_bytes.value


def stream_frame_bytes(payload_bytes: int, masked: bool = True) -> int:
    """One WebSocket binary message of ``payload_bytes`` (RFC 6455 section 5.2; the device counts
    its own frames with the same function, optimizer.protocol.frame_bytes)."""
    return frame_bytes(payload_bytes, masked)


def link_bytes(payload_bytes: float, network: Network, transport: str = "http") -> LinkBytes:
    """The request carrying ``payload_bytes`` and its answer over ``transport``, with packet headers."""
    if transport == "stream":
        request = stream_frame_bytes(round(payload_bytes))
        answer = stream_frame_bytes(STREAM_ANSWER_BYTES, masked=False)
    elif transport == "http":
        request, answer = http_request_bytes(round(payload_bytes)), HTTP_ANSWER_BYTES
    else:
        raise ValueError(f"transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}")
    return LinkBytes(_on_air(request, network), _on_air(answer, network))
