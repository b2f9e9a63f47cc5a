"""The named metrics of one configuration, and dominance by name.

A study picks its objectives and constraints by these names; nothing indexes them by position.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from optimizer.errors import UserError

__all__ = ["DEFAULT_OBJECTIVES", "METRICS", "Metric", "check_objectives", "dominates"]


@dataclass(frozen=True)
class Metric:
    name: str
    direction: str  # "maximize" or "minimize"
    unit: str
    description: str


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", "maximize", "", "val accuracy (share of images classified right)"),
        Metric("payload_bytes", "minimize", "B", "mean len(payload) over val"),
        Metric("device_ms", "minimize", "ms", "head + every device-side codec step"),
        Metric("wire_bytes", "minimize", "B", "bytes on the link per inference: payload, transport, packet headers"),
        Metric("transfer_ms", "minimize", "ms", "round trip + the request and answer over the link"),
        Metric("server_ms", "minimize", "ms", "request handling + decode + tail on the server"),
        Metric("e2e_ms", "minimize", "ms", "device_ms + transfer_ms + server_ms"),
        Metric("energy_mj", "minimize", "mJ", "device compute + radio energy of the bytes on the link"),
        Metric("device_macs", "minimize", "", "MACs on the device: head + codec projection or encoder"),
    )
}

DEFAULT_OBJECTIVES = ("accuracy", "payload_bytes", "device_ms")


def check_objectives(names: Sequence[str]) -> tuple[str, ...]:
    """2-4 distinct known metric names, or a UserError that lists the valid ones."""
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise UserError(f"unknown objective {unknown[0]!r}; choose 2-4 of {', '.join(METRICS)}")
    if not 2 <= len(names) <= 4 or len(set(names)) != len(names):
        raise UserError(f"--objectives takes 2-4 distinct metric names, got {','.join(names)!r}")
    return tuple(names)


def dominates(a: Mapping[str, float], b: Mapping[str, float], objectives: Sequence[str]) -> bool:
    """``a`` is no worse than ``b`` on every objective and better on at least one."""
    better = False
    for name in objectives:
        sign = 1.0 if METRICS[name].direction == "maximize" else -1.0
        da, db = sign * a[name], sign * b[name]
        if da < db:
            return False
        better = better or da > db
    return better
