"""What the device half and the server half agree on over the network, in a module that imports
nothing but the standard library: the deployed halves (optimizer.deploy) speak it, and the system
model (optimizer.system) counts its bytes; neither install loads the other side's libraries for it.

A payload (wire format 2, built by ``optimizer.codecs``; the same bytes over both transports):

    offset  size  field
    0       1     tag byte: the top two bits are 10 (format 2), the low six the configuration tag
                  0..63 (:func:`read_tag`; 0 in single-configuration bundles)
    1       1-4   body length in bytes, LEB128 varint
    ...     n     body (the codec's: entropy-coded symbols, an image file, the class id, ...)

So the header is 2 bytes for bodies under 128 bytes, 3 under 16 KiB. The shape follows from the
codec (image codecs read it from the image file), and which bundle made the payload is checked
once per connection or request, not per payload: a payload of another bundle is refused by its
bundle identity, sent beside it. A format-1 payload (``b"SO\x01"`` ...) is refused with a line
that says so.

A probe is an empty payload (no tag byte, no body): it crosses the same path as an inference and is
answered at once, with nothing (HTTP 204 No Content; on the stream an empty binary message). The
adaptive device times it to tell the link's round trip from its serialization (optimizer.deploy).

HTTP (one request per inference): ``POST /v1/infer`` whose body is the payload, sent as
:data:`CONTENT_TYPE` with the bundle identity in :data:`BUNDLE_HEADER` (:func:`request_headers`:
what the device adds to its HTTP client's defaults). The server answers 409 when the header is
missing or names another bundle: HTTP requests are independent, so the identity travels with each
(64 hex characters, about 86 bytes with the header name).

The stream (one persistent WebSocket, :data:`STREAM_PATH`):

    connect   GET /v1/stream?bundle=ID   ID = the SHA-256 (hex) of the bundle's manifest.json, which
              pins every other file; the server accepts, then either sends one text message (a JSON
              hello: bundle name, k, codec) or closes with code 4409 and the reason
              (the client runs another bundle than the server: nothing it sends could decode)
    request   one binary message per inference: the payload itself, nothing added
    answer    one message per request, in request order:
              binary, 6 bytes: class index (uint16, little-endian), score (float16; NaN where the
              split sends only the class id), server time in ms (float16); empty for a probe
              text: JSON {"status": 400|409|413, "detail": "..."} for a payload that cannot be
              answered (the HTTP route's status codes); the connection stays open

Bytes on the wire per inference beyond the payload (RFC 6455 framing): the request's frame header
is 2 bytes + the client's 4-byte mask key (payloads under 126 bytes; 8 bytes up to 64 KiB), the
answer is a 2-byte header + 6 bytes. Over HTTP/1.1 the request line and headers alone are ~200
bytes. The score as float16 keeps 3 significant digits (steps of 2**-11 near 1).
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ANSWER_BYTES",
    "BUNDLE_HEADER",
    "BUNDLE_MISMATCH",
    "CONTENT_TYPE",
    "MAX_TAG",
    "INFER_PATH",
    "PROBE",
    "PROBE_STATUS",
    "STREAM_PATH",
    "Answer",
    "bundle_id",
    "close_reason",
    "error_text",
    "frame_bytes",
    "pack_answer",
    "parse_answer",
    "read_tag",
    "request_headers",
    "tag_byte",
]

CONTENT_TYPE = "application/octet-stream"
INFER_PATH = "/v1/infer"
STREAM_PATH = "/v1/stream"
BUNDLE_MISMATCH = 4409  # WebSocket close code (4000-4999: the application's own)
_ANSWER = struct.Struct("<Hee")
ANSWER_BYTES = _ANSWER.size
_MAX_REASON = 123  # RFC 6455: a close frame's reason is at most 123 bytes of UTF-8
BUNDLE_HEADER = "X-Split-Opt-Bundle"
PROBE = b""  # an empty payload: answered at once, with nothing
PROBE_STATUS = 204
MAX_TAG = 63
_FORMAT_2 = 0b1000_0000  # the tag byte's top two bits
_FORMAT_MASK = 0b1100_0000
_FORMAT_1 = b"SO\x01"


def request_headers(identity: str) -> dict[str, str]:
    """Headers the device half adds to its HTTP client's defaults on every inference request;
    ``identity``: the bundle's (:func:`bundle_id`)."""
    return {"content-type": CONTENT_TYPE, BUNDLE_HEADER.lower(): identity}


def tag_byte(tag: int) -> int:
    """The first byte of a format-2 payload for configuration ``tag`` (0..63)."""
    if not 0 <= tag <= MAX_TAG:
        raise ValueError(f"a configuration tag is in 0..{MAX_TAG}, got {tag}; a bundle holds at most 64 configurations")
    return _FORMAT_2 | tag


def read_tag(payload: bytes) -> int:
    """The configuration tag of a format-2 payload; ValueError (one line) for anything else."""
    if not payload:
        raise ValueError("empty payload: a payload starts with its tag byte (wire format 2)")
    if bytes(payload[:3]) == _FORMAT_1:
        raise ValueError(
            "this is a wire format 1 payload (b'SO\\x01'...); this server reads format 2: "
            "update the device half (split-opt infer) to this version"
        )
    if payload[0] & _FORMAT_MASK != _FORMAT_2:
        raise ValueError(f"payload starts with 0x{payload[0]:02x}, not a wire format 2 tag byte (0b10xxxxxx)")
    return payload[0] & MAX_TAG


def frame_bytes(message_bytes: int, masked: bool = True) -> int:
    """One WebSocket message of ``message_bytes`` on the wire (RFC 6455 section 5.2): a 2-byte
    header, 2 or 8 more from 126 bytes or from 64 KiB on, and the client's 4-byte mask key."""
    length = 0 if message_bytes < 126 else 2 if message_bytes < 65536 else 8
    return 2 + length + (4 if masked else 0) + message_bytes


def bundle_id(manifest_bytes: bytes) -> str:
    """The identity a stream checks at connection time: the SHA-256 of manifest.json."""
    return hashlib.sha256(manifest_bytes).hexdigest()


@dataclass(frozen=True)
class Answer:
    """One answer on the stream: a prediction, or the status and reason of a refused payload."""

    class_index: int = -1
    score: float | None = None
    server_ms: float = math.nan
    status: int = 200
    detail: str = ""


def pack_answer(class_index: int, score: float | None, server_ms: float) -> bytes:
    """A prediction as the 6-byte answer message."""
    return _ANSWER.pack(class_index, math.nan if score is None else score, min(server_ms, 65504.0))


def error_text(status: int, detail: str) -> str:
    """A refused payload as the text answer message."""
    return json.dumps({"status": status, "detail": detail})


def parse_answer(message: bytes | str) -> Answer:
    """One answer message (binary prediction, empty probe answer, or text error) -> :class:`Answer`
    (a probe's: status 204); ValueError if none of them."""
    if isinstance(message, str):
        doc: dict[str, Any] = json.loads(message)
        return Answer(status=int(doc["status"]), detail=str(doc["detail"]))
    if not message:
        return Answer(status=PROBE_STATUS, server_ms=0.0)
    if len(message) != ANSWER_BYTES:
        raise ValueError(f"an answer is {ANSWER_BYTES} bytes, got {len(message)}")
    index, score, server_ms = _ANSWER.unpack(message)
    return Answer(int(index), None if math.isnan(score) else float(score), float(server_ms))


def close_reason(text: str) -> str:
    """``text`` cut to what a close frame can carry."""
    encoded = text.encode()
    return text if len(encoded) <= _MAX_REASON else encoded[: _MAX_REASON - 3].decode(errors="ignore") + "..."
