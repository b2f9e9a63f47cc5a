"""The latency and energy model of a device profile.

A head's time is a sum of *terms*, each a count of work priced by one ``compute`` key of the
profile. Rates (``..._per_s`` keys) cost ``count / rate``; overheads (``..._ms`` keys) cost
``count x ms``. Per segment of the model:

- each conv/linear layer's MACs at its class's throughput (conv, depthwise, grouped, pointwise),
  plus ``layer_overhead_ms`` per layer;
- element-wise ops per class (optimizer/profiler/_costs.py) at their throughputs.

And once per head run: ``run_overhead_ms`` (the runtime's call), the head's input and output
elements at ``boundary_elements_per_s`` (the runtime's layout conversion at a graph's ends), and
the weights that do not stay in cache between runs: the head's conv/linear weight bytes beyond
``weight_cache_bytes``, streamed from memory at ``weight_bytes_per_s`` (what makes a layer with
many weights and a small activation, a late ResNet stage at a small input or a classifier, cost
more than its MACs say, and only once the head's weights outgrow the cache: a head run again and
again keeps up to that many bytes of its weights cached). A segment timed alone pays the per-run
costs too, which is how ``split-opt calibrate`` fits them. One pair of functions (:func:`terms`,
:func:`run_terms`) defines the counts for the prediction and for the calibration's fit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from optimizer.config import Compute, DeviceProfile
from optimizer.profiler._costs import ELEMENTWISE_CLASSES, OP_CLASSES, SegmentCost

__all__ = [
    "COMPUTE_KEYS",
    "PRICE_KEYS",
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
    "weight_bytes",
]

MAC_KEYS = {c: f"{c}_macs_per_s" for c in OP_CLASSES}
OPS_KEYS = {c: f"{c}_ops_per_s" for c in ELEMENTWISE_CLASSES}
RATE_KEYS = (*MAC_KEYS.values(), *OPS_KEYS.values(), "weight_bytes_per_s", "boundary_elements_per_s")
OVERHEAD_KEYS = ("layer_overhead_ms", "run_overhead_ms")
PRICE_KEYS = (*RATE_KEYS, *OVERHEAD_KEYS)  # the prices: time per unit of counted work
COMPUTE_KEYS = (*PRICE_KEYS, "weight_cache_bytes")  # every key of the latency model (threads aside)


def terms(segment: SegmentCost) -> dict[str, float]:
    """The counts of work in one segment, by the compute key that prices them (the per-run costs,
    weight streaming included, are :func:`run_terms`)."""
    out: dict[str, float] = {MAC_KEYS[c]: float(m) for c, m in segment.macs_by_class().items()}
    out |= {OPS_KEYS[c]: float(n) for c, n in segment.ops_by_class().items()}
    out["layer_overhead_ms"] = float(len(segment.layers))
    return out


def weight_bytes(segments: Sequence[SegmentCost], bytes_per_weight: float) -> float:
    """The conv/linear weight bytes (BatchNorm folded) a run of these segments reads."""
    return float(sum(layer.params for segment in segments for layer in segment.layers)) * bytes_per_weight


def run_terms(
    input_elements: int, output_elements: int, weights: float = 0.0, cache_bytes: float = 0.0
) -> dict[str, float]:
    """The counts paid once per run of a head (or of a segment timed alone) that reads ``weights``
    bytes of conv/linear weights, of which ``cache_bytes`` stay in cache from the run before."""
    return {
        "run_overhead_ms": 1.0,
        "boundary_elements_per_s": float(input_elements + output_elements),
        "weight_bytes_per_s": max(0.0, weights - cache_bytes),
    }


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
    return terms_ms(terms(segment), profile.compute)


def run_ms(input_elements: int, output_elements: int, profile: DeviceProfile, weights: float = 0.0) -> float:
    """Predicted cost paid once per run of a head with these input and output sizes and ``weights``
    bytes of conv/linear weights."""
    compute = profile.compute
    return terms_ms(run_terms(input_elements, output_elements, weights, compute.weight_cache_bytes.value), compute)


def head_ms(segments: Sequence[SegmentCost], input_elements: int, profile: DeviceProfile) -> float:
    """Predicted time of a head made of ``segments`` (0 for the empty head)."""
    if not segments:
        return 0.0
    weights = weight_bytes(segments, profile.memory.bytes_per_weight.value)
    return run_ms(input_elements, segments[-1].output_elements, profile, weights) + sum(
        segment_ms(s, profile) for s in segments
    )


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
