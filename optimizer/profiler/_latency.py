"""The latency and energy model of a device profile.

A head's time is a sum of *terms*, each a count of work priced by one ``compute`` key of the
profile. Rates (``..._per_s`` keys) cost ``count / rate``; overheads (``..._ms`` keys) cost
``count x ms``. Per segment of the model:

- each conv/linear layer's MACs at its class's throughput (conv, depthwise, grouped, pointwise),
  plus ``layer_overhead_ms`` per layer;
- its weights streamed from memory: parameters x ``bytes_per_weight`` at ``weight_bytes_per_s``
  (what makes a layer with many weights and a small activation, a late ResNet stage at a small
  input or a classifier, cost more than its MACs say);
- element-wise ops per class (optimizer/profiler/_costs.py) at their throughputs.

And once per head run: ``run_overhead_ms`` (the runtime's call) and the head's input and output
elements at ``boundary_elements_per_s`` (the runtime's layout conversion at a graph's ends). A
segment timed alone pays both too, which is how ``split-opt calibrate`` fits them. One function
(:func:`terms`) defines the counts for the prediction and for the calibration's fit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from optimizer.config import Compute, DeviceProfile
from optimizer.profiler._costs import ELEMENTWISE_CLASSES, OP_CLASSES, SegmentCost

__all__ = [
    "COMPUTE_KEYS",
    "RATE_KEYS",
    "energy_mj",
    "head_ms",
    "run_ms",
    "run_terms",
    "segment_ms",
    "send_ms",
    "server_ms",
    "terms",
    "terms_ms",
]

MAC_KEYS = {c: f"{c}_macs_per_s" for c in OP_CLASSES}
OPS_KEYS = {c: f"{c}_ops_per_s" for c in ELEMENTWISE_CLASSES}
RATE_KEYS = (*MAC_KEYS.values(), *OPS_KEYS.values(), "weight_bytes_per_s", "boundary_elements_per_s")
OVERHEAD_KEYS = ("layer_overhead_ms", "run_overhead_ms")
COMPUTE_KEYS = (*RATE_KEYS, *OVERHEAD_KEYS)  # every key the latency model prices (threads aside)


def terms(segment: SegmentCost, bytes_per_weight: float) -> dict[str, float]:
    """The counts of work in one segment, by the compute key that prices them."""
    out: dict[str, float] = {MAC_KEYS[c]: float(m) for c, m in segment.macs_by_class().items()}
    out |= {OPS_KEYS[c]: float(n) for c, n in segment.ops_by_class().items()}
    out["weight_bytes_per_s"] = float(sum(layer.params for layer in segment.layers)) * bytes_per_weight
    out["layer_overhead_ms"] = float(len(segment.layers))
    return out


def run_terms(input_elements: int, output_elements: int) -> dict[str, float]:
    """The counts paid once per run of a head (or of a segment timed alone)."""
    return {"run_overhead_ms": 1.0, "boundary_elements_per_s": float(input_elements + output_elements)}


def _value(compute: Compute, key: str) -> float:
    return float(getattr(compute, key).value)


def terms_ms(counts: dict[str, float], compute: Compute) -> float:
    """The time of some counted work on ``compute``."""
    ms = 0.0
    for key, count in counts.items():
        if count:
            ms += count / _value(compute, key) * 1e3 if key.endswith("_per_s") else count * _value(compute, key)
    return ms


def segment_ms(segment: SegmentCost, profile: DeviceProfile) -> float:
    """Predicted time of one segment inside a head (the per-run costs not included)."""
    return terms_ms(terms(segment, profile.memory.bytes_per_weight.value), profile.compute)


def run_ms(input_elements: int, output_elements: int, profile: DeviceProfile) -> float:
    """Predicted cost paid once per run of a head with these input and output sizes."""
    return terms_ms(run_terms(input_elements, output_elements), profile.compute)


def head_ms(segments: Sequence[SegmentCost], input_elements: int, profile: DeviceProfile) -> float:
    """Predicted time of a head made of ``segments`` (0 for the empty head)."""
    if not segments:
        return 0.0
    return run_ms(input_elements, segments[-1].output_elements, profile) + sum(segment_ms(s, profile) for s in segments)


def server_ms(segments: Sequence[SegmentCost], profile: DeviceProfile) -> float:
    """Predicted time of the tail (the given segments) on the profile's server."""
    server = profile.server
    macs = sum(s.macs for s in segments)
    layers = sum(len(s.layers) for s in segments)
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
