"""``GET /metrics``: the server's counters in Prometheus's text format (prometheus-client).

Each app has its own registry, so two servers in one process (tests) keep separate counts.

    splitopt_requests_total{path, status}   requests answered, by route and HTTP status
    splitopt_request_seconds{path}          latency histogram, first byte in to last byte out
    splitopt_payload_bytes                  request body sizes on POST /v1/infer
    splitopt_batch_size                     requests per tail call (1 everywhere without batching)
    splitopt_in_flight_requests             inference requests being worked on or queued now
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "MetricsMiddleware"]

ROUTES = frozenset({"/v1/infer", "/healthz", "/v1/manifest", "/metrics"})  # other paths count as "other"
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
_BYTE_BUCKETS = tuple(float(2**i) for i in range(4, 21, 2))  # 16 B .. 1 MiB
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    def __init__(self) -> None:
        self.registry = reg = CollectorRegistry(auto_describe=True)
        self.requests = Counter("splitopt_requests", "Requests answered", ["path", "status"], registry=reg)
        self.latency = Histogram(
            "splitopt_request_seconds", "Request latency", ["path"], buckets=_LATENCY_BUCKETS, registry=reg
        )
        self.payload = Histogram(
            "splitopt_payload_bytes", "Request body bytes on POST /v1/infer", buckets=_BYTE_BUCKETS, registry=reg
        )
        self.batch = Histogram("splitopt_batch_size", "Requests per tail call", buckets=_BATCH_BUCKETS, registry=reg)
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}
        self.in_flight = Gauge("splitopt_in_flight_requests", "Inference requests in progress", registry=reg)

    def record(self, path: str, status: int, seconds: float, body_bytes: int) -> None:
        key = (path, status)
        if key not in self._children:  # labels() looks the child up under a lock: once per (path, status)
            self._children[key] = (self.requests.labels(path, str(status)), self.latency.labels(path))
        count, latency = self._children[key]
        count.inc()
        latency.observe(seconds)
        if path == "/v1/infer":
            self.payload.observe(body_bytes)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """ASGI middleware (outermost): counts every HTTP answer, 401 and 429 included."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"] if scope["path"] in ROUTES else "other"
        start, status, received = time.perf_counter(), 500, 0

        async def counting_receive() -> Any:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            return message

        async def recording_send(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, counting_receive, recording_send)
        finally:
            self.metrics.record(path, status, time.perf_counter() - start, received)
