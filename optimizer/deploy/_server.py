"""The server half over HTTP (FastAPI): one payload in, one prediction out.

    POST /v1/infer    body: one payload in the wire format (application/octet-stream)
                      200 {"class_index", "label", "score", "payload_bytes", "server_ms"}
                      400 corrupt payload (the reason in "detail"), 409 payload of another bundle,
                      413 body over the codec's largest payload, 415 another content type
    GET  /healthz     {"status": "ok", "bundle", "k", "codec"}
    GET  /v1/manifest the bundle's manifest.json
    WS   /v1/stream   the stream: one binary message per payload, one compact answer each
                      (see optimizer.protocol; the route is in _stream_route)
    GET  /metrics     counters in Prometheus's text format (see _metrics)

With a token (ServeOptions.token) every route but /healthz needs ``Authorization: Bearer TOKEN``
(401 without it); more than ``max_concurrent`` inference requests at once are answered 429 with
Retry-After, one that takes longer than ``timeout_s`` 503; concurrent payloads are decoded and run
through the tail in batches (see _batching, _limits). The stream's handshake needs the same token
(checked once per connection).

Request bodies only ever reach the codec's wire-format parser (never pickle, never np.load), and
the body is read at most up to the codec's largest payload, so a client cannot make the server
buffer more than that.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from optimizer.codecs import CodecError, PayloadMismatch
from optimizer.deploy._batching import TailBatcher
from optimizer.deploy._bundle import Bundle
from optimizer.deploy._halves import Prediction, ServerHalf
from optimizer.deploy._limits import ServeOptions, install_protections
from optimizer.deploy._metrics import CONTENT_TYPE_LATEST, Metrics
from optimizer.deploy._stream_route import add_stream_route
from optimizer.protocol import CONTENT_TYPE, INFER_PATH

__all__ = ["CONTENT_TYPE", "ServeOptions", "create_app"]


class _TooLarge(Exception):
    pass


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


async def _read_capped(request: Request, limit: int) -> bytes:
    """The request body, or _TooLarge as soon as it (or its declared length) passes ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _TooLarge
    return bytes(body)


def create_app(bundle: Bundle, options: ServeOptions | None = None) -> FastAPI:
    """The app for one bundle that has already passed its sha256 check (see open_bundle)."""
    options = options or ServeOptions()
    server = ServerHalf(bundle)
    limit = bundle.max_payload_bytes
    metrics = Metrics()
    batcher = TailBatcher(server, options.max_batch, options.batch_window_ms / 1e3, metrics.batch.observe)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        batcher.close()

    app = FastAPI(title=f"split-opt {bundle.name}", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)

    async def run(payload: bytes) -> Prediction:
        if options.max_batch > 1:
            return await batcher.infer(payload)
        metrics.batch.observe(1)
        return await run_in_threadpool(server.infer, payload)

    @app.get("/metrics")
    def metrics_text() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "bundle": bundle.name, "k": bundle.k, "codec": bundle.codec.kind}

    @app.get("/v1/manifest")
    def manifest() -> dict[str, Any]:
        return bundle.manifest

    @app.post(INFER_PATH)
    async def infer(request: Request) -> JSONResponse:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != CONTENT_TYPE:
            return _error(415, f"send the payload as {CONTENT_TYPE}, got content type {content_type or 'none'!r}")
        try:
            payload = await _read_capped(request, limit)
        except _TooLarge:
            return _error(413, f"payload over this bundle's largest possible payload of {limit} bytes")
        start = time.perf_counter()
        try:
            prediction = await run(payload)
        except PayloadMismatch as exc:
            return _error(409, f"{exc} (this server runs bundle {bundle.name!r})")
        except CodecError as exc:
            return _error(400, f"corrupt payload: {exc}")
        return JSONResponse(
            {
                "class_index": prediction.class_index,
                "label": prediction.label,
                "score": prediction.score,
                "payload_bytes": len(payload),
                "server_ms": round((time.perf_counter() - start) * 1e3, 3),
            }
        )

    add_stream_route(app, bundle, server)
    install_protections(app, options, metrics)
    return app
