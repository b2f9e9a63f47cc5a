"""The two ONNX graphs of a bundle, with the codec's arithmetic folded in.

What each half computes, per codec kind (k = split, n = number of blocks):

| codec        | head.onnx (device)                                   | tail.onnx (server)                       |
| ------------ | ---------------------------------------------------- | ---------------------------------------- |
| pca (1..n)   | image -> features[:k] -> float16 rounding -> blocks   | symbols -> dequantize -> inverse PCA ->  |
|              | -> PCA projection -> b-bit quantization -> symbols    | features[k:] -> pool -> classifier       |
| float16      | image -> features[:k] -> float16 activation           | activation -> features[k:] -> classifier |
| image (k=0)  | none: the device codes the image itself (Pillow)      | image -> the whole network               |
| class-id     | image -> the whole network -> logits                  | none: the payload is the class id        |
| bottleneck   | image -> features[:k] -> encoder -> symbols (see _bottleneck_graphs) | symbols -> decoder -> tail |

# NOTE: the float16 rounding in the head is deliberate: the search scores configurations on
# float16 copies of the activations (see optimizer.search's engine), so the deployed head quantizes
# exactly what the study quantized. Entropy coding stays outside the graphs, in the codec's own
# Python code, so payloads are the codec's byte for byte.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch
import torch.nn.functional as F
from torch import nn

from optimizer.codecs import BottleneckCodec, FeatureCodec, blocks_per_sample
from optimizer.deploy._bottleneck_graphs import BottleneckHead, BottleneckTail

__all__ = ["OPSET", "SymbolHead", "SymbolTail", "export_onnx", "head_module", "tail_module"]

OPSET = 17


class _Blocks(nn.Module):
    """The codec's block geometry (optimizer.codecs._blocks) written with torch ops ONNX can hold."""

    def __init__(self, codec: FeatureCodec) -> None:
        super().__init__()
        self.shape, self.geometry, self.tile = codec.shape, codec.geometry, codec.tile
        _, h, w = codec.shape
        self.padded = (-(-h // self.tile) * self.tile, -(-w // self.tile) * self.tile)

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


def _buffer(module: nn.Module, name: str, value: object) -> None:
    module.register_buffer(name, torch.as_tensor(value, dtype=torch.float32).clone())


class SymbolHead(nn.Module):
    """features[:k], then the codec's projection and quantization: (N, 3, S, S) -> (N, blocks, width) int32."""

    mean: torch.Tensor
    basis_t: torch.Tensor
    lo: torch.Tensor
    step: torch.Tensor

    def __init__(self, head: nn.Module, codec: FeatureCodec) -> None:
        super().__init__()
        self.head, self.blocks = head, _Blocks(codec)
        self.has_basis = codec.basis is not None
        _buffer(self, "mean", codec.mean)
        _buffer(self, "basis_t", codec.basis.T if codec.basis is not None else 0.0)
        _buffer(self, "lo", codec.lo)
        _buffer(self, "step", codec.step)
        self.max_symbol = float((1 << codec.bits) - 1)
        self.n_blocks, self.width = blocks_per_sample(codec.shape, codec.geometry, codec.tile), codec.width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.blocks.to_vectors(self.head(x).half().float())
        coeffs = (v - self.mean) @ self.basis_t if self.has_basis else v
        symbols = torch.round((coeffs - self.lo) / self.step).clamp(0, self.max_symbol)  # round half to even
        return symbols.to(torch.int32).reshape(-1, self.n_blocks, self.width)


class SymbolTail(nn.Module):
    """Dequantization and inverse PCA, then the rest of the network: symbols -> logits."""

    mean: torch.Tensor
    basis: torch.Tensor
    lo: torch.Tensor
    step: torch.Tensor

    def __init__(self, tail: nn.Module, codec: FeatureCodec) -> None:
        super().__init__()
        self.tail, self.blocks = tail, _Blocks(codec)
        self.has_basis = codec.basis is not None
        _buffer(self, "mean", codec.mean)
        _buffer(self, "basis", codec.basis if codec.basis is not None else 0.0)
        self.register_buffer("lo", torch.as_tensor(codec.lo, dtype=torch.float64).clone())
        self.register_buffer("step", torch.as_tensor(codec.step, dtype=torch.float64).clone())
        self.width = codec.width

    def forward(self, symbols: torch.Tensor) -> torch.Tensor:
        # NOTE: float64 as numpy computes it (int64 symbols times float32 steps widen to float64).
        coeffs = (self.lo + symbols.reshape(-1, self.width).double() * self.step).float()
        v = coeffs @ self.basis + self.mean if self.has_basis else coeffs
        return self.tail(self.blocks.from_vectors(v))  # type: ignore[no-any-return]


class _Float16Head(nn.Module):
    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x).half()  # type: ignore[no-any-return]


def head_module(head: nn.Module, codec_kind: str, codec: object) -> tuple[nn.Module, str] | None:
    """The device graph and the name of its output, or None at k = 0 (no network on the device)."""
    if codec_kind == "pca":
        assert isinstance(codec, FeatureCodec)
        return SymbolHead(head, codec), "symbols"
    if codec_kind == "bottleneck":
        assert isinstance(codec, BottleneckCodec)
        return BottleneckHead(head, codec), "symbols"
    if codec_kind == "float16":
        return _Float16Head(head), "activation"
    if codec_kind == "class-id":
        return head, "logits"
    return None


def tail_module(tail: nn.Module, codec_kind: str, codec: object) -> tuple[nn.Module, str] | None:
    """The server graph and the name of its input, or None at k = n + 1 (the class id is the answer)."""
    if codec_kind == "pca":
        assert isinstance(codec, FeatureCodec)
        return SymbolTail(tail, codec), "symbols"
    if codec_kind == "bottleneck":
        assert isinstance(codec, BottleneckCodec)
        return BottleneckTail(tail, codec), "symbols"
    if codec_kind == "float16":
        return tail, "activation"
    if codec_kind == "image":
        return tail, "image"
    return None


def export_onnx(module: nn.Module, example: torch.Tensor, path: Path, input_name: str, output_name: str) -> None:
    """Write ``module`` as ONNX with a free batch dimension (TorchScript-based exporter: no onnxscript)."""
    module.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice and tracer warnings
        torch.onnx.export(
            module,
            (example,),
            str(path),
            dynamo=False,
            input_names=[input_name],
            output_names=[output_name],
            dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
            opset_version=OPSET,
        )
    onnx.checker.check_model(str(path), full_check=True)  # a malformed graph fails here, not on the device
