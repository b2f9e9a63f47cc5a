"""The server's protections, configured by :class:`ServeOptions` and installed around the app.

From the outside in: metrics (every answer is counted), the bearer token (401), load shedding and
the per-request timeout (429 with Retry-After when ``max_concurrent`` inference requests are
already in progress or queued; 503 when one takes longer than ``timeout_s``), then the routes.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from optimizer.deploy._auth import BearerAuth
from optimizer.deploy._metrics import Metrics, MetricsMiddleware

__all__ = ["WORK_PATHS", "LoadShedder", "ServeOptions", "install_protections"]

WORK_PATHS = frozenset({"/v1/infer"})  # the routes that cost compute


@dataclass(frozen=True)
class ServeOptions:
    token: str | None = None  # None: no authentication (loopback, or --insecure)
    max_concurrent: int = 256  # inference requests in progress or queued; more are answered 429
    timeout_s: float = 10.0  # per inference request, body included; then 503
    retry_after_s: int = 1
    max_batch: int = 32  # 1: no batching (each request runs the tail on its own, in a thread pool)
    batch_window_ms: float = 2.0  # how long a batch that is not full waits for more requests

    def __post_init__(self) -> None:
        if self.max_concurrent < 1 or self.max_batch < 1 or self.timeout_s <= 0 or self.batch_window_ms < 0:
            raise ValueError(f"invalid server options: {self}")


async def _answer(send: Any, status: int, detail: str, retry_after_s: int | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after_s is not None:
        headers.append((b"retry-after", str(retry_after_s).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class LoadShedder:
    """ASGI middleware for WORK_PATHS: a cap on concurrent requests and a deadline for each."""

    def __init__(self, app: Any, options: ServeOptions, metrics: Metrics | None = None) -> None:
        self.app, self.options, self.metrics = app, options, metrics
        self.in_flight = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] not in WORK_PATHS:
            await self.app(scope, receive, send)
            return
        options = self.options
        if self.in_flight >= options.max_concurrent:
            detail = f"the server is at its limit of {options.max_concurrent} concurrent requests; retry later"
            await _answer(send, 429, detail, options.retry_after_s)
            return
        started = False

        async def tracking_send(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        self.in_flight += 1
        if self.metrics is not None:
            self.metrics.in_flight.inc()
        try:
            async with asyncio.timeout(options.timeout_s):
                await self.app(scope, receive, tracking_send)
        except TimeoutError:
            if not started:
                detail = f"no answer within {options.timeout_s:g} s; retry later"
                await _answer(send, 503, detail, options.retry_after_s)
        finally:
            self.in_flight -= 1
            if self.metrics is not None:
                self.metrics.in_flight.dec()


def install_protections(app: Any, options: ServeOptions, metrics: Metrics) -> None:
    """Wrap a Starlette/FastAPI app: the last middleware added runs first."""
    app.add_middleware(LoadShedder, options=options, metrics=metrics)
    if options.token is not None:
        app.add_middleware(BearerAuth, token=options.token)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
