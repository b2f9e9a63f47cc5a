"""The learned bottleneck's device and server transforms as torch modules, for head.onnx and tail.onnx.

| device graph (after the head)                                   | server graph (before the tail)  |
| --------------------------------------------------------------- | ------------------------------- |
| activation -> float16 rounding -> encoder -> round -> - offset,  | symbols + offset -> decoder      |
| clamped to the codec's range -> symbols (h*w, L)                 |                                 |

The symbols are the codec's (``BottleneckCodec.latent_symbols``): the device ANS-codes them with the
codec's own Python coder, so payloads are the study's byte for byte. The bottleneck's weights travel
inside the graphs; a bundle does not need the ``.pt`` file.

A bottleneck trained with a hyperprior exports the same two graphs: its side nets (hyper-encoder on
the device, hyper-decoder on both sides) run inside the codec, in numpy from the codec state
(optimizer.codecs._hyperprior), since both sides need the decoded side latent's means and scales
before any symbol of the main latent can be coded or decoded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from optimizer.codecs._bottleneck import BottleneckCodec
    from optimizer.models import LearnedBottleneck

__all__ = ["BottleneckDevice", "BottleneckServer"]


class BottleneckDevice(nn.Module):
    """(N, C, H, W) activation -> (N, h*w, L) int32 symbols."""

    offset: torch.Tensor

    def __init__(self, codec: BottleneckCodec, bottleneck: LearnedBottleneck) -> None:
        super().__init__()
        assert codec.offset is not None and codec.coder is not None
        self.encoder = bottleneck.encoder
        self.register_buffer("offset", torch.as_tensor(codec.offset, dtype=torch.float32).view(1, -1, 1, 1).clone())
        self.max_symbol = float(codec.coder.alphabet - 1)
        self.latent = codec.latent_shape[0]

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        z = torch.round(self.encoder(a.half().float()))
        symbols = (z - self.offset).clamp(0, self.max_symbol).to(torch.int32)
        return symbols.reshape(symbols.shape[0], self.latent, -1).permute(0, 2, 1)


class BottleneckServer(nn.Module):
    """(N, h*w, L) integer symbols -> (N, C, H, W) activation."""

    offset: torch.Tensor

    def __init__(self, codec: BottleneckCodec, bottleneck: LearnedBottleneck) -> None:
        super().__init__()
        self.bottleneck = bottleneck
        self.register_buffer("offset", torch.as_tensor(codec.offset, dtype=torch.float32).view(1, -1, 1, 1).clone())
        self.shape = codec.latent_shape

    def forward(self, symbols: torch.Tensor) -> torch.Tensor:
        z = symbols.permute(0, 2, 1).reshape(-1, *self.shape).float() + self.offset
        return self.bottleneck.decode(z)  # type: ignore[no-any-return]
