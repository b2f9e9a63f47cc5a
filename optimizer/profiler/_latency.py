"""The latency and energy model of a device profile.

A conv/linear layer takes ``macs / throughput(op class) + layer_overhead``; a block adds its
element-wise ops at the element-wise throughput. The head's latency at split k is the sum over
the blocks it runs. This is a roofline-free, per-operation-class model: simple enough to fit from
a handful of measurements (``split-opt calibrate``), and checked against measurement in
benchmarks/bench_latency_model.py.
"""

from __future__ import annotations

import math

from optimizer.config import Compute, DeviceProfile
from optimizer.profiler._costs import BlockCost, LayerCost

__all__ = ["block_ms", "energy_mj", "layer_ms", "send_ms", "server_ms"]


def _throughput(compute: Compute, op_class: str) -> float:
    return {
        "conv": compute.conv_macs_per_s,
        "depthwise": compute.depthwise_macs_per_s,
        "pointwise": compute.pointwise_macs_per_s,
    }[op_class].value


def layer_ms(layer: LayerCost, compute: Compute) -> float:
    return layer.macs / _throughput(compute, layer.op_class) * 1e3 + compute.layer_overhead_ms.value


def block_ms(block: BlockCost, compute: Compute) -> float:
    """Predicted time of one block on the device."""
    elementwise = block.elementwise_ops / compute.elementwise_ops_per_s.value * 1e3
    return sum(layer_ms(layer, compute) for layer in block.layers) + elementwise


def server_ms(blocks: list[BlockCost], profile: DeviceProfile) -> float:
    """Predicted time of the tail (the given blocks) on the profile's server."""
    server = profile.server
    macs = sum(b.macs for b in blocks)
    layers = sum(len(b.layers) for b in blocks)
    return macs / server.macs_per_s.value * 1e3 + layers * server.layer_overhead_ms.value


def energy_mj(macs: int, profile: DeviceProfile) -> float:
    """Compute energy of ``macs`` on the device (1 nJ = 1e-6 mJ)."""
    return macs * profile.energy.nj_per_mac.value * 1e-6


def send_ms(payload_bytes: int, profile: DeviceProfile) -> float:
    """Time to push ``payload_bytes`` (no transport) through the uplink, packet headers included
    (RTT not included; optimizer.system adds the transport and the round trip)."""
    net = profile.network
    packets = max(1, math.ceil(payload_bytes / net.mss_bytes.value))
    return (payload_bytes + packets * net.per_packet_overhead_bytes.value) * 8 / net.uplink_kbps.value
