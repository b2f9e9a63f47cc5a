"""The server's end of the stream: a WebSocket route on the FastAPI app (protocol in ``optimizer.protocol``).

The bundle identity is checked once, when the device connects; after that each binary message is
a payload and gets one answer message, in order. Payloads reach only the codec's wire-format
parser, as over HTTP, and one over the bundle's largest payload is refused without decoding.
"""

from __future__ import annotations

import json
import time

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool

from optimizer.codecs import CodecError, PayloadMismatch
from optimizer.deploy._bundle import Bundle
from optimizer.deploy._configs import ServerHalves
from optimizer.protocol import BUNDLE_MISMATCH, PROBE, STREAM_PATH, close_reason, error_text, pack_answer

__all__ = ["add_stream_route", "answer_payload"]

_UNSUPPORTED_DATA = 1003  # RFC 6455: a text message where only binary ones are accepted


def answer_payload(server: ServerHalves, payload: bytes) -> bytes | str:
    """One payload (of any of the bundle's configurations) -> its answer message: 6 bytes of
    prediction, or the text of a refusal."""
    if payload == PROBE:
        return PROBE  # answered by nothing, at once (the device times its link with it)
    limit = server.max_payload_bytes
    if len(payload) > limit:
        return error_text(413, f"payload of {len(payload)} bytes is over this bundle's largest of {limit} bytes")
    start = time.perf_counter()
    try:
        prediction = server.infer(payload)
    except PayloadMismatch as exc:
        return error_text(409, f"{exc} (this server runs bundle {server.bundle.name!r})")
    except CodecError as exc:
        return error_text(400, f"corrupt payload: {exc}")
    return pack_answer(prediction.class_index, prediction.score, (time.perf_counter() - start) * 1e3)


def add_stream_route(app: FastAPI, bundle: Bundle, server: ServerHalves) -> None:
    """Answer ``GET /v1/stream?bundle=ID`` (WebSocket) for ``bundle`` on ``app``."""
    expected = bundle.identity
    hello = json.dumps(
        {"bundle": bundle.name, "k": bundle.k, "codec": bundle.codec.kind, "id": expected, "tags": bundle.tags}
    )

    @app.websocket(STREAM_PATH)
    async def stream(websocket: WebSocket) -> None:
        await websocket.accept()
        claimed = websocket.query_params.get("bundle", "")
        if claimed != expected:
            reason = f"bundle mismatch: server runs {bundle.name} {expected[:12]}, got {claimed[:12] or 'none'}"
            await websocket.close(code=BUNDLE_MISMATCH, reason=close_reason(reason))
            return
        await websocket.send_text(hello)
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                payload = message.get("bytes")
                if payload is None:
                    await websocket.close(code=_UNSUPPORTED_DATA, reason="send each payload as a binary message")
                    return
                answer = await run_in_threadpool(answer_payload, server, payload)
                await (websocket.send_bytes(answer) if isinstance(answer, bytes) else websocket.send_text(answer))
        except WebSocketDisconnect:
            return
