"""A learned bottleneck at split k: encoder (device), decoder (server) and a factorized prior.

After Matsubara et al., "Supervised Compression for Resource-constrained Edge Computing Systems"
(arXiv 2108.11898), with one difference: the frozen head up to k stays as it is and the
bottleneck is added after it (the paper replaces the first layers), so one trained teacher serves
every split.

- encoder: conv3x3(C -> hidden) + ReLU + conv3x3(hidden -> L, stride s); its output rounded to
  integers is the latent the device entropy-codes.
- decoder: nearest upsampling by s + conv3x3(L -> hidden) + ReLU + conv3x3(hidden -> C), so the
  tail receives an activation of the split's shape.
- prior: per latent channel, a mixture of ``K`` logistic distributions (learned weights, means and
  scales), discretized to integers: P(n) = F(n + 1/2) - F(n - 1/2). Training adds uniform noise in
  [-1/2, 1/2) for the rate term (Balle et al.), the decoder sees the rounded latent through a
  straight-through estimator. The same prior, tabulated over a bounded integer range per channel
  (see :func:`prior_tables`), is the ANS coder's model, so the trained rate is the coded rate.
  With ``entropy="hyperprior"`` a mean-scale hyperprior replaces it (optimizer.models._hyperprior).

# NOTE: a mixture of logistics was chosen over CompressAI's monotone-network CDF: its CDF is
# closed-form, it needs no auxiliary quantile loss, and three components fit the skewed or bimodal
# per-channel latents seen here well enough (the coded rate is reported, not the estimate).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from optimizer.models._bottleneck_prior import FactorizedPrior, prior_tables
from optimizer.models._hyperprior import HyperPrior

__all__ = ["ENTROPY_MODELS", "BottleneckSpec", "FactorizedPrior", "LearnedBottleneck", "conv_macs", "prior_tables"]

ENTROPY_MODELS = ("factorized", "hyperprior")


@dataclass(frozen=True)
class BottleneckSpec:
    """The architecture: input activation (C, H, W), hidden width, latent channels L, stride s."""

    channels: int
    height: int
    width: int
    hidden: int
    latent: int
    stride: int
    mixtures: int = 3
    entropy: str = "factorized"  # or "hyperprior" (optimizer.models._hyperprior)
    side: int = 8  # the hyperprior's side latent channels (unused when factorized)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (self.latent, -(-self.height // self.stride), -(-self.width // self.stride))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class LearnedBottleneck(nn.Module):
    """Encoder + decoder + prior for one split; ``forward`` is the training pass."""

    def __init__(self, spec: BottleneckSpec) -> None:
        super().__init__()
        self.spec = spec
        c, h, lat, s = spec.channels, spec.hidden, spec.latent, spec.stride
        self.encoder = nn.Sequential(
            nn.Conv2d(c, h, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(h, lat, 3, stride=s, padding=1)
        )
        self.decoder = nn.Sequential(
            nn.Upsample(scale_factor=s, mode="nearest") if s > 1 else nn.Identity(),
            nn.Conv2d(lat, h, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(h, c, 3, padding=1),
        )
        # factorized: the latent's prior; hyperprior: side nets + the side latent's prior
        self.prior = FactorizedPrior(lat, spec.mixtures) if spec.entropy == "factorized" else None
        self.hyper = HyperPrior(lat, h, spec.side, spec.mixtures) if spec.entropy == "hyperprior" else None
        if self.prior is None and self.hyper is None:
            raise ValueError(f"entropy model must be one of {ENTROPY_MODELS}, got {spec.entropy!r}")

    def bits(self, y: torch.Tensor, noisy: bool = False) -> torch.Tensor:
        """Bits per sample of the latent (side latent included): under uniform noise in training
        (``noisy``, y continuous), else of the rounded latent."""
        if self.hyper is not None:
            return self.hyper.bits(y, noisy)
        assert self.prior is not None
        return self.prior.bits(y + torch.empty_like(y).uniform_(-0.5, 0.5) if noisy else torch.round(y))

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent (N, L, h, w) -> activation (N, C, H, W), cropped to the split's shape."""
        out = self.decoder(latent)
        return out[:, :, : self.spec.height, : self.spec.width]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training pass: (reconstruction through the rounded latent, bits per sample under noise)."""
        y = self.encoder(x)
        bits = self.bits(y, noisy=True)
        rounded = y + (torch.round(y) - y).detach()  # straight-through: forward rounds, backward is identity
        return self.decode(rounded), bits

    @torch.no_grad()
    def latent(self, x: torch.Tensor) -> torch.Tensor:
        """Inference: the rounded latent (float tensor of integers) the device codes."""
        return torch.round(self.encoder(x))


def conv_macs(module: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """MACs of the convolutions in ``module`` for one input (one multiply-add = one MAC; ReLU and
    upsampling are not counted), by running it once on zeros with hooks."""
    total = 0

    def hook(conv: nn.Module, _: Any, out: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(conv, nn.Conv2d)
        per_output = conv.in_channels // conv.groups * conv.kernel_size[0] * conv.kernel_size[1]
        total += int(out[0].numel()) * per_output

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        module(torch.zeros(1, *input_shape))
    for handle in handles:
        handle.remove()
    return total
