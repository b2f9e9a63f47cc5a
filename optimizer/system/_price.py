"""Pricing countable work (optimizer.codecs.Work) with a profile's throughputs.

Device: MACs at the compute section's rate for their op class, one layer overhead per layer,
element-wise operations at the element-wise rate, then per codec call ``call_ms`` and per coded
unit its fixed ``UNIT_call_ms`` plus count / rate (the coding section). The server prices every MAC
and element-wise operation at its single ``macs_per_s`` and its decoders with its own coding
section.
"""

from __future__ import annotations

from optimizer.codecs import Work
from optimizer.config import Coding, Compute, Server

__all__ = ["coding_ms", "device_work_ms", "server_work_ms"]


def coding_ms(work: Work, coding: Coding) -> float:
    """The coded units and fixed per-payload costs of ``work``."""
    ms = work.calls * coding.call_ms.value
    ms += sum(coding.column(unit) * n for unit, n in work.columns.items())
    return ms + sum(coding.call(unit) + count / coding.rate(unit) * 1e3 for unit, count in work.units.items())


def device_work_ms(work: Work, compute: Compute, coding: Coding) -> float:
    rates = {
        "conv": compute.conv_macs_per_s.value,
        "depthwise": compute.depthwise_macs_per_s.value,
        "pointwise": compute.pointwise_macs_per_s.value,
    }
    ms = sum(macs / rates[op] * 1e3 for op, macs in work.macs.items())
    ms += work.layers * compute.layer_overhead_ms.value
    ms += work.elementwise_ops / compute.elementwise_ops_per_s.value * 1e3
    return ms + coding_ms(work, coding)


def server_work_ms(work: Work, server: Server) -> float:
    ms = (work.total_macs + work.elementwise_ops) / server.macs_per_s.value * 1e3
    return ms + work.layers * server.layer_overhead_ms.value + coding_ms(work, server.coding)
