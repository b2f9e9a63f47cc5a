"""The split table: one row per split k with what the device runs, holds and sends.

At k = 0 the head is empty and the raw image crosses the network; at k = n + 1 the head is the
whole model and only the class id (4 bytes, int32) needs to be sent, so ``send_ms_fp32`` there is
the time for those 4 bytes while the activation columns describe the logits.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from typing import Any

from optimizer.config import DeviceProfile
from optimizer.models import FAMILY
from optimizer.profiler._costs import ModelCosts
from optimizer.profiler._latency import block_ms, energy_mj, send_ms, server_ms

__all__ = ["CONVENTION", "ModelProfile", "SplitProfile", "build_profile"]

CONVENTION = (
    "MACs: one multiply-add = one MAC; convolution and fully-connected layers only; BatchNorm folded "
    "into the preceding convolution; element-wise ops (ReLU6, residual adds, pooling) counted separately. "
    "Bytes: float32 unless a column says otherwise; weights and peak activation at the device's "
    "bytes_per_weight / bytes_per_activation. Latency: predicted from the device profile."
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
    device: str
    device_path: str
    family: str
    alpha: float
    input_size: int
    num_classes: int
    total_macs: int
    splits: list[SplitProfile]

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "device_path": self.device_path,
            "model": {
                "family": self.family,
                "alpha": self.alpha,
                "input_size": self.input_size,
                "num_classes": self.num_classes,
            },
            "total_macs": self.total_macs,
            "convention": CONVENTION,
            "splits": [asdict(s) for s in self.splits],
        }


def _fits(weight_bytes: int, peak_bytes: int, profile: DeviceProfile) -> bool:
    mem = profile.memory
    if mem.shared:
        return weight_bytes + peak_bytes <= mem.weights_bytes.value
    return weight_bytes <= mem.weights_bytes.value and peak_bytes <= mem.activation_bytes.value


def build_profile(
    costs: ModelCosts,
    profile: DeviceProfile,
    alpha: float,
    num_classes: int,
    shapes: list[tuple[int, ...]],
    names: list[str],
) -> ModelProfile:
    """Rows for k = 0..n+1 from the block costs (``shapes``/``names`` come from the split points)."""
    mem = profile.memory
    per_weight, per_act = mem.bytes_per_weight.value, mem.bytes_per_activation.value
    blocks = costs.blocks
    block_times = [block_ms(b, profile.compute) for b in blocks]
    rows = []
    for k, (shape, name) in enumerate(zip(shapes, names, strict=True)):
        head = blocks[:k]
        elements = math.prod(shape)
        peak_elements = max([costs.input_elements, *(b.peak_elements for b in head)])
        params = sum(b.params for b in head)
        cum_macs = sum(b.macs for b in head)
        sent = CLASS_ID_BYTES if k == len(blocks) else 4 * elements
        rows.append(
            SplitProfile(
                k=k,
                name=name,
                shape=tuple(shape),
                activation_elements=elements,
                activation_bytes_fp32=4 * elements,
                activation_bytes_fp16=2 * elements,
                activation_bytes_int8=elements,
                macs=blocks[k - 1].macs if k else 0,
                cum_macs=cum_macs,
                elementwise_ops=sum(b.elementwise_ops for b in head),
                head_params=params,
                head_weight_bytes=int(params * per_weight),
                peak_activation_bytes=int(peak_elements * per_act),
                latency_ms=sum(itertools.islice(block_times, k)),
                energy_mj=energy_mj(cum_macs, profile),
                send_ms_fp32=send_ms(sent, profile),
                tail_latency_ms=server_ms(blocks[k:], profile),
                fits_memory=_fits(int(params * per_weight), int(peak_elements * per_act), profile),
            )
        )
    return ModelProfile(
        profile.name, profile.path, FAMILY, alpha, costs.input_size, num_classes, costs.total_macs, rows
    )
