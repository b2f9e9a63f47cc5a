"""What one payload costs a codec, in countable units (priced by optimizer.system with a profile).

Counting conventions (stated, not implied): one multiply-add is one MAC; a projection is one
pointwise layer (it pays the profile's per-layer overhead once); quantization and dequantization
count a handful of element-wise operations per value; entropy coders count the symbols they code,
float16 conversion the values it converts, image codecs the pixels they encode or decode (one per
H x W position, whatever the channel count, as Pillow's codecs work per pixel row), and an entropy
coder with one model per component also counts its columns (ANS codes column by column). Every
payload pays one codec call (the wire header, the dispatch). Projections and quantization run inside
the deployed head.onnx, so the device prices them at its compute throughputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["QUANTIZE_OPS", "Work"]

QUANTIZE_OPS = 4  # subtract, scale, round, clip per value (dequantization: multiply, add)


@dataclass(frozen=True)
class Work:
    """One side (device or server) of coding one payload."""

    macs: dict[str, int] = field(default_factory=dict)  # op class (pointwise, conv, ...) -> MACs
    layers: int = 0  # projections / convolutions, each paying the per-layer overhead
    elementwise_ops: int = 0
    units: dict[str, int] = field(default_factory=dict)  # ans/huffman/raw symbols, float16 values, jpeg/webp/png pixels
    calls: int = 1  # codec calls (each pays the fixed cost per payload: dispatch and wire header)
    columns: dict[str, int] = field(default_factory=dict)  # coder -> separately modelled columns (components)

    def __add__(self, other: Work) -> Work:
        return Work(
            _merge(self.macs, other.macs),
            self.layers + other.layers,
            self.elementwise_ops + other.elementwise_ops,
            _merge(self.units, other.units),
            self.calls + other.calls,
            _merge(self.columns, other.columns),
        )

    @property
    def total_macs(self) -> int:
        return sum(self.macs.values())

    def to_json(self) -> dict[str, object]:
        return {
            "macs": dict(self.macs),
            "layers": self.layers,
            "elementwise_ops": self.elementwise_ops,
            "units": dict(self.units),
            "calls": self.calls,
            "columns": dict(self.columns),
        }


def _merge(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    out = dict(a)
    for key, value in b.items():
        out[key] = out.get(key, 0) + value
    return out
