"""SCAFFOLD (lead's branch only, replaced by the profiler branch's profile_spec before merging):
rows per fx split point with MACs from fvcore and a crude latency, so the search can be developed."""

from __future__ import annotations

import functools

from optimizer.config import DeviceProfile
from optimizer.models import split_graph
from optimizer.profiler._table import ModelProfile, SplitProfile

__all__ = ["profile_spec"]


@functools.lru_cache(maxsize=256)
def profile_spec(device: DeviceProfile, spec: str, input_size: int, num_classes: int = 10) -> ModelProfile:
    points = split_graph(spec).points(input_size)
    total = points[-1].cum_macs
    rate = device.compute.conv_macs_per_s.value
    server = device.server.macs_per_s.value
    rows = [
        SplitProfile(
            p.k, p.name, p.shape, p.elements, 4 * p.elements, 2 * p.elements, p.elements, p.macs, p.cum_macs, 0, 0, 0,
            4 * p.elements, p.cum_macs / rate * 1e3, 0.0, 0.0, (total - p.cum_macs) / server * 1e3, True,
        )
        for p in points
    ]
    return ModelProfile(device.name, device.path, spec.split(":")[0], 0.0, input_size, num_classes, total, rows)
