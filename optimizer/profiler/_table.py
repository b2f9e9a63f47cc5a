"""The split table: one row per split k with what the device runs, holds and sends.

At k = 0 the head is empty and the raw image crosses the network; at the last k the head is the
whole model and only the class id (4 bytes, int32) needs to be sent, so ``send_ms_fp32`` there is
the time for those 4 bytes while the activation columns describe the logits.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from optimizer.config import DeviceProfile
from optimizer.profiler._costs import SegmentCost
from optimizer.profiler._latency import energy_mj, run_ms, segment_ms, send_ms, server_ms
from optimizer.profiler._latency import weight_bytes as layer_weight_bytes

__all__ = ["CONVENTION", "ModelProfile", "SplitProfile", "build_profile"]

CONVENTION = (
    "MACs: one multiply-add = one MAC (fvcore); convolutions, linear layers and matrix products only; "
    "BatchNorm folded into the preceding convolution; element-wise ops (activations, adds, multiplies, "
    "pooling) counted separately, one per output element (pooling: per element read). Bytes: float32 "
    "unless a column says otherwise; weights and peak activation at the device's bytes_per_weight / "
    "bytes_per_activation; peak activation from the graph's liveness. Latency: predicted from the device profile."
)
CLASS_ID_BYTES = 4


@dataclass(frozen=True)
class SplitProfile:
    k: int
    name: str
    shape: tuple[int, ...]
    activation_elements: int
    activation_bytes_fp32: int
    activation_bytes_fp16: int
    activation_bytes_int8: int
    macs: int
    cum_macs: int
    elementwise_ops: int
    head_params: int
    head_weight_bytes: int
    peak_activation_bytes: int
    latency_ms: float
    energy_mj: float
    send_ms_fp32: float
    tail_latency_ms: float
    fits_memory: bool


@dataclass(frozen=True)
class ModelProfile:
    """Every split of one model spec at one input size on one device.

    ``numbering`` is ``fx`` (the split points of optimizer.models.SplitGraph) or ``block`` (the
    deprecated MobileNetV2 block numbering of ``profile_model``).
    """

    device: str
    device_path: str
    spec: str
    family: str
    params: dict[str, Any]
    input_size: int
    num_classes: int
    total_macs: int
    splits: list[SplitProfile]
    numbering: str = "fx"

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "device_path": self.device_path,
            "model": {
                "spec": self.spec,
                "family": self.family,
                "params": self.params,
                "input_size": self.input_size,
                "num_classes": self.num_classes,
            },
            "numbering": self.numbering,
            "total_macs": self.total_macs,
            "convention": CONVENTION,
            "splits": [asdict(s) | {"shape": list(s.shape)} for s in self.splits],
        }


def _fits(weight_bytes: int, peak_bytes: int, profile: DeviceProfile) -> bool:
    mem = profile.memory
    if mem.shared:
        return weight_bytes + peak_bytes <= mem.weights_bytes.value
    return weight_bytes <= mem.weights_bytes.value and peak_bytes <= mem.activation_bytes.value


def build_profile(
    segments: list[SegmentCost], input_shape: tuple[int, ...], names: list[str], profile: DeviceProfile
) -> list[SplitProfile]:
    """Rows for k = 0..len(segments): the head of k runs segments 1..k (``names`` has one per k)."""
    mem = profile.memory
    per_weight, per_act = mem.bytes_per_weight.value, mem.bytes_per_activation.value
    input_elements = math.prod(input_shape)
    shapes = [tuple(input_shape), *(s.shape for s in segments)]
    rows = []
    cum_macs = params = ops = 0
    peak, compute_ms, weights = input_elements, 0.0, 0.0
    for k, (shape, name) in enumerate(zip(shapes, names, strict=True)):
        if k:
            segment = segments[k - 1]
            cum_macs, params, ops = cum_macs + segment.macs, params + segment.params, ops + segment.elementwise_ops
            peak = max(peak, segment.peak_elements)
            compute_ms += segment_ms(segment, profile)
            weights += layer_weight_bytes([segment], per_weight)
        elements = math.prod(shape)
        sent = CLASS_ID_BYTES if k == len(segments) else 4 * elements
        weight_bytes, peak_bytes = int(params * per_weight), int(peak * per_act)
        rows.append(
            SplitProfile(
                k=k,
                name=name,
                shape=tuple(shape),
                activation_elements=elements,
                activation_bytes_fp32=4 * elements,
                activation_bytes_fp16=2 * elements,
                activation_bytes_int8=elements,
                macs=segments[k - 1].macs if k else 0,
                cum_macs=cum_macs,
                elementwise_ops=ops,
                head_params=params,
                head_weight_bytes=weight_bytes,
                peak_activation_bytes=peak_bytes,
                latency_ms=compute_ms + run_ms(input_elements, elements, profile, weights) if k else 0.0,
                energy_mj=energy_mj(cum_macs, profile),
                send_ms_fp32=send_ms(sent, profile),
                tail_latency_ms=server_ms(segments[k:], profile),
                fits_memory=_fits(weight_bytes, peak_bytes, profile),
            )
        )
    return rows
