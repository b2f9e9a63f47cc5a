"""The system model: device, coding, network and server profiles -> the named metrics of one
configuration (device_ms, wire_bytes, transfer_ms, server_ms, e2e_ms, energy_mj), and the
bandwidth sweep that re-prices stored configurations at other uplink rates."""

from __future__ import annotations

from optimizer.system._metrics import DEFAULT_OBJECTIVES, METRICS, Metric, check_objectives, dominates
from optimizer.system._path import PathCosts, path_costs, transfer_ms
from optimizer.system._price import coding_ms, device_work_ms, server_work_ms
from optimizer.system._sweep import SweepCandidate, bandwidth_sweep, sweep_rates
from optimizer.system._transport import (
    CONTENT_TYPE,
    HTTP_ANSWER_BYTES,
    INFER_PATH,
    STREAM_ANSWER_BYTES,
    TRANSPORTS,
    LinkBytes,
    http_request_bytes,
    link_bytes,
    request_headers,
    stream_frame_bytes,
)

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_OBJECTIVES",
    "HTTP_ANSWER_BYTES",
    "INFER_PATH",
    "METRICS",
    "STREAM_ANSWER_BYTES",
    "TRANSPORTS",
    "LinkBytes",
    "Metric",
    "PathCosts",
    "SweepCandidate",
    "bandwidth_sweep",
    "check_objectives",
    "coding_ms",
    "device_work_ms",
    "dominates",
    "http_request_bytes",
    "link_bytes",
    "path_costs",
    "request_headers",
    "server_work_ms",
    "stream_frame_bytes",
    "sweep_rates",
    "transfer_ms",
]
