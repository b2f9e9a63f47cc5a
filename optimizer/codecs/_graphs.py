"""Codecs' device and server transforms as torch modules, for the deployed head.onnx and tail.onnx.

Each computes what the codec's numpy transform computes (``Codec.symbols`` / ``Codec.values``;
tests/test_codec_contract.py checks every registered codec), so the deployed halves code exactly
what the study scored. Imported only by ``Codec.device_graph`` / ``server_graph``: the deployed
halves run the exported graphs and never import torch.

| codec      | device graph (after the head)                          | server graph (before the tail)   |
| ---------- | ------------------------------------------------------ | -------------------------------- |
| pca        | float16 rounding -> blocks -> projection -> quantizer    | dequantizer -> inverse projection |
| float16    | cast to float16                                        | cast to float32                  |
| class-id   | argmax of the logits                                   | (no tail: the id is the answer)   |

The building blocks (``HalfRound``, ``Quantizer``, ``Dequantizer``, ``Blocks``) serve new codecs too:
a codec whose transforms are made of them adds no graph code of its own (see _uniform).

# NOTE: the float16 rounding before a projection is deliberate: the search scores configurations
# on float16 copies of the activations (see optimizer.search's engine), so the deployed head
# quantizes exactly what the study quantized.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from optimizer.codecs._feature import FeatureCodec

__all__ = [
    "ArgMax",
    "Blocks",
    "Dequantizer",
    "FloatCast",
    "HalfCast",
    "HalfRound",
    "PcaDevice",
    "PcaServer",
    "Quantizer",
    "buffer",
]


def buffer(module: nn.Module, name: str, value: object, dtype: torch.dtype = torch.float32) -> None:
    module.register_buffer(name, torch.as_tensor(value, dtype=dtype).clone())


class Blocks(nn.Module):
    """The block geometry of optimizer.codecs._blocks written with torch ops ONNX can hold."""

    def __init__(self, shape: tuple[int, ...], geometry: str, tile: int) -> None:
        super().__init__()
        self.shape, self.geometry, self.tile = shape, geometry, tile
        _, h, w = shape
        self.padded = (-(-h // tile) * tile, -(-w // tile) * tile)

    def to_vectors(self, a: torch.Tensor) -> torch.Tensor:
        c, h, w = self.shape
        if self.geometry == "channel":
            return a.permute(0, 2, 3, 1).reshape(-1, c)
        (ph, pw), t = self.padded, self.tile
        a = F.pad(a, (0, pw - w, 0, ph - h))
        return a.reshape(-1, c, ph // t, t, pw // t, t).permute(0, 2, 4, 1, 3, 5).reshape(-1, c * t * t)

    def from_vectors(self, v: torch.Tensor) -> torch.Tensor:
        c, h, w = self.shape
        if self.geometry == "channel":
            return v.reshape(-1, h, w, c).permute(0, 3, 1, 2)
        (ph, pw), t = self.padded, self.tile
        tiles = v.reshape(-1, ph // t, pw // t, c, t, t).permute(0, 3, 1, 4, 2, 5)
        return tiles.reshape(-1, c, ph, pw)[:, :, :h, :w]


class HalfRound(nn.Module):
    """Round to float16 and back: the precision the search's cached activations have."""

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return a.half().float()


class Quantizer(nn.Module):
    """``round((x - lo) / step)`` clamped to 0..max_symbol, as int32 (lo, step broadcast over x);
    rounding is half to even, as numpy's ``rint``."""

    lo: torch.Tensor
    step: torch.Tensor

    def __init__(self, lo: object, step: object, max_symbol: int) -> None:
        super().__init__()
        buffer(self, "lo", lo)
        buffer(self, "step", step)
        self.max_symbol = float(max_symbol)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round((x - self.lo) / self.step).clamp(0, self.max_symbol).to(torch.int32)


class Dequantizer(nn.Module):
    """``lo + symbols * step`` in float64, then float32: as numpy computes int64 symbols times float32."""

    lo: torch.Tensor
    step: torch.Tensor

    def __init__(self, lo: object, step: object) -> None:
        super().__init__()
        buffer(self, "lo", lo, torch.float64)
        buffer(self, "step", step, torch.float64)

    def forward(self, symbols: torch.Tensor) -> torch.Tensor:
        return (self.lo + symbols.double() * self.step).float()


class PcaDevice(nn.Module):
    """(N, C, H, W) activation -> (N, blocks, width) int32 symbols."""

    mean: torch.Tensor
    basis_t: torch.Tensor

    def __init__(self, codec: FeatureCodec) -> None:
        super().__init__()
        self.round, self.blocks = HalfRound(), Blocks(codec.layout, codec.geometry, codec.tile)
        self.layout = codec.layout
        self.has_basis = codec.basis is not None
        buffer(self, "mean", codec.mean)
        buffer(self, "basis_t", codec.basis.T if codec.basis is not None else 0.0)
        self.quantizer = Quantizer(codec.lo, codec.step, (1 << codec.bits) - 1)
        self.n_blocks, self.width = codec.symbols_example().shape

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        v = self.blocks.to_vectors(self.round(a).reshape(-1, *self.layout))
        coeffs = (v - self.mean) @ self.basis_t if self.has_basis else v
        return self.quantizer(coeffs).reshape(-1, self.n_blocks, self.width)  # type: ignore[no-any-return]


class PcaServer(nn.Module):
    """(N, blocks, width) integer symbols -> (N, C, H, W) activation."""

    mean: torch.Tensor
    basis: torch.Tensor

    def __init__(self, codec: FeatureCodec) -> None:
        super().__init__()
        self.blocks = Blocks(codec.layout, codec.geometry, codec.tile)
        self.shape = codec.shape
        self.has_basis = codec.basis is not None
        buffer(self, "mean", codec.mean)
        buffer(self, "basis", codec.basis if codec.basis is not None else 0.0)
        self.dequantizer = Dequantizer(codec.lo, codec.step)
        self.width = codec.width

    def forward(self, symbols: torch.Tensor) -> torch.Tensor:
        coeffs = self.dequantizer(symbols.reshape(-1, self.width))
        v = coeffs @ self.basis + self.mean if self.has_basis else coeffs
        return self.blocks.from_vectors(v).reshape(-1, *self.shape)


class HalfCast(nn.Module):
    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return a.half()


class FloatCast(nn.Module):
    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return a.float()


class ArgMax(nn.Module):
    """(N, classes) logits -> (N, 1) int64 class ids."""

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.argmax(dim=1, keepdim=True)
