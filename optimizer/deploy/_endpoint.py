"""``POST /v1/infer`` as a plain ASGI endpoint: the per-request path of the server, kept lean.

FastAPI's request wrapper (dependency resolution, Request objects, response classes) costs more
per request than decoding a payload and a batched tail step together; here the body is read
straight from the ASGI messages, at most up to the bundle's largest payload, and the answer is one
JSON document. The rules are the server's (see _server): 415 another content type, 409 a missing
or foreign bundle identity (header ``X-Split-Opt-Bundle``) or a payload of another configuration,
413 a body over the largest payload, 400 a corrupt payload; an empty body is a probe (204, no body).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from optimizer.codecs import CodecError, PayloadMismatch
from optimizer.deploy._halves import Prediction
from optimizer.protocol import BUNDLE_HEADER, CONTENT_TYPE, PROBE, PROBE_STATUS

__all__ = ["InferEndpoint"]


class _TooLarge(Exception):
    pass


def _header(scope: dict[str, Any], name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def _answer(send: Any, status: int, doc: dict[str, Any]) -> None:
    body = json.dumps(doc).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_capped(scope: dict[str, Any], receive: Any, limit: int) -> bytes:
    declared = _header(scope, b"content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise _TooLarge
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("the client went away")
        body += message.get("body", b"")
        if len(body) > limit:
            raise _TooLarge
        if not message.get("more_body", False):
            return bytes(body)


def identity_refusal(claimed: bytes | None, name: str, expected: str) -> str | None:
    """Why a request's bundle identity is refused (None: it is this bundle's). The identity is
    required: payloads carry no state hash, so it is the only check that they are this bundle's."""
    if claimed is None:
        return f"send the bundle identity in the {BUNDLE_HEADER} header (split-opt infer does); this server runs {name}"
    text = claimed.decode("latin-1")
    if text != expected:
        return f"bundle mismatch: server runs {name} {expected[:12]}, the request names {text[:12] or 'none'}"
    return None


class InferEndpoint:
    """The ASGI app of POST /v1/infer for one bundle; ``run`` turns a payload into a prediction."""

    def __init__(
        self, bundle_name: str, identity: str, limit: int, run: Callable[[bytes], Awaitable[Prediction]]
    ) -> None:
        self.bundle_name, self.identity, self.limit, self.run = bundle_name, identity, limit, run
        self.header = BUNDLE_HEADER.lower().encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        raw_type = (_header(scope, b"content-type") or b"").decode("latin-1")
        content_type = raw_type.split(";")[0].strip().lower()
        if content_type != CONTENT_TYPE:
            detail = f"send the payload as {CONTENT_TYPE}, got content type {content_type or 'none'!r}"
            await _answer(send, 415, {"detail": detail})
            return
        refusal = identity_refusal(_header(scope, self.header), self.bundle_name, self.identity)
        if refusal is not None:
            await _answer(send, 409, {"detail": refusal})
            return
        try:
            payload = await _read_capped(scope, receive, self.limit)
        except _TooLarge:
            detail = f"payload over this bundle's largest possible payload of {self.limit} bytes"
            await _answer(send, 413, {"detail": detail})
            return
        except ConnectionError:
            return
        if payload == PROBE:  # the device timing its link: the same path, nothing to compute
            await send({"type": "http.response.start", "status": PROBE_STATUS, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        start = time.perf_counter()
        try:
            prediction = await self.run(payload)
        except PayloadMismatch as exc:
            await _answer(send, 409, {"detail": f"{exc} (this server runs bundle {self.bundle_name!r})"})
            return
        except CodecError as exc:
            await _answer(send, 400, {"detail": f"corrupt payload: {exc}"})
            return
        doc = {
            "class_index": prediction.class_index,
            "label": prediction.label,
            "score": prediction.score,
            "payload_bytes": len(payload),
            "server_ms": round((time.perf_counter() - start) * 1e3, 3),
        }
        await _answer(send, 200, doc)
