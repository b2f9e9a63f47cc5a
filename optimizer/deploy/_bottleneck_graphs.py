"""The bundle graphs of a learned-bottleneck configuration, with the trained bottleneck folded in.

| head.onnx (device)                                              | tail.onnx (server)                       |
| --------------------------------------------------------------- | ---------------------------------------- |
| image -> features[:k] -> float16 rounding -> encoder -> round -> | symbols + offset -> decoder ->            |
| - offset, clamped to the codec's range -> symbols (h*w, L)       | features[k:] -> pool -> classifier       |

The symbols are the codec's (``BottleneckCodec.symbols``): the device ANS-codes them with the
codec's own Python coder, so payloads are the study's byte for byte. The bottleneck's weights
travel inside the graphs; the bundle does not need the ``.pt`` file.

A bottleneck trained with a hyperprior exports the same two graphs: its side nets (hyper-encoder
on the device, hyper-decoder on both sides) run inside the codec, in numpy from the codec state
(optimizer.codecs._hyperprior), since both sides need the decoded side latent's means and scales
before any symbol of the main latent can be coded or decoded.
"""

from __future__ import annotations

import torch
from torch import nn

from optimizer.codecs import BottleneckCodec
from optimizer.models import LearnedBottleneck, load_bottleneck

__all__ = ["BottleneckHead", "BottleneckTail", "bottleneck_of"]


def bottleneck_of(codec: BottleneckCodec) -> LearnedBottleneck:
    """The trained bottleneck a codec refers to (its SHA-256 must match the codec's params)."""
    from optimizer.errors import UserError

    loaded = load_bottleneck(str(codec.params["file"]))
    if codec.params.get("weights_sha256", loaded.sha256) != loaded.sha256:
        raise UserError(f"bottleneck {loaded.path} changed since the study (SHA-256 differs); re-run the study")
    return loaded.module


class BottleneckHead(nn.Module):
    """(N, 3, S, S) image -> (N, h*w, L) int32 symbols."""

    offset: torch.Tensor

    def __init__(self, head: nn.Module, codec: BottleneckCodec) -> None:
        super().__init__()
        assert codec.offset is not None and codec.coder is not None
        self.head, self.encoder = head, bottleneck_of(codec).encoder
        self.register_buffer("offset", torch.as_tensor(codec.offset, dtype=torch.float32).view(1, -1, 1, 1).clone())
        self.max_symbol = float(codec.coder.alphabet - 1)
        self.latent = codec.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = torch.round(self.encoder(self.head(x).half().float()))
        symbols = (z - self.offset).clamp(0, self.max_symbol).to(torch.int32)
        return symbols.reshape(symbols.shape[0], self.latent, -1).permute(0, 2, 1)


class BottleneckTail(nn.Module):
    """(N, h*w, L) int32 symbols -> logits."""

    offset: torch.Tensor

    def __init__(self, tail: nn.Module, codec: BottleneckCodec) -> None:
        super().__init__()
        self.tail, self.bottleneck = tail, bottleneck_of(codec)
        self.register_buffer("offset", torch.as_tensor(codec.offset, dtype=torch.float32).view(1, -1, 1, 1).clone())
        self.shape = codec.shape

    def forward(self, symbols: torch.Tensor) -> torch.Tensor:
        z = symbols.permute(0, 2, 1).reshape(-1, *self.shape).float() + self.offset
        return self.tail(self.bottleneck.decode(z))  # type: ignore[no-any-return]
