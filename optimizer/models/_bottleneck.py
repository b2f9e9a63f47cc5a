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

# NOTE: a mixture of logistics was chosen over CompressAI's monotone-network CDF: its CDF is
# closed-form, it needs no auxiliary quantile loss, and three components fit the skewed or bimodal
# per-channel latents seen here well enough (the coded rate is reported, not the estimate).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["BottleneckSpec", "FactorizedPrior", "LearnedBottleneck", "conv_macs", "prior_tables"]

TAIL_MASS = 1e-6  # probability left outside each channel's tabulated range (folded into the edges)
MAX_RANGE = 4096  # largest alphabet per channel the codec accepts


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

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (self.latent, -(-self.height // self.stride), -(-self.width // self.stride))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class FactorizedPrior(nn.Module):
    """A discretized mixture of logistics per latent channel (independent over positions)."""

    def __init__(self, channels: int, mixtures: int = 3) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(channels, mixtures))
        self.means = nn.Parameter(torch.linspace(-1.0, 1.0, mixtures).repeat(channels, 1))
        self.log_scales = nn.Parameter(torch.zeros(channels, mixtures))

    def _per_component(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """y (N, C, ...) -> (y, means, scales) broadcast to (N, C, ..., K)."""
        extra = (1,) * (y.dim() - 2)
        means = self.means.view(1, -1, *extra, self.means.shape[1])
        scales = self.log_scales.clamp(-7.0, 7.0).exp().view_as(means)
        return y.unsqueeze(-1), means, scales

    def likelihood(self, y: torch.Tensor) -> torch.Tensor:
        """P(round(y) = y) for integer y, or the noisy relaxation for real y; same shape as y."""
        v, means, scales = self._per_component(y)
        upper, lower = (v - means + 0.5) / scales, (v - means - 0.5) / scales
        # compute in the tail where sigmoid is precise (never sign 0: that would zero the mass)
        sign = torch.where(upper + lower > 0, -1.0, 1.0).detach()
        mass = (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs()
        weights = torch.softmax(self.logits, dim=1).view_as(means)
        return (weights * mass).sum(-1).clamp_min(1e-9)

    def cdf(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) per channel for v of shape (C, M)."""
        weights = torch.softmax(self.logits, dim=1)
        scales = self.log_scales.clamp(-7.0, 7.0).exp()
        z = (v.unsqueeze(-1) - self.means.unsqueeze(1)) / scales.unsqueeze(1)
        return (weights.unsqueeze(1) * torch.sigmoid(z)).sum(-1)

    def bits(self, y: torch.Tensor) -> torch.Tensor:
        """-log2 P(y) summed per sample: shape (N,)."""
        return -torch.log2(self.likelihood(y)).flatten(1).sum(1)


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
        self.prior = FactorizedPrior(lat, spec.mixtures)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent (N, L, h, w) -> activation (N, C, H, W), cropped to the split's shape."""
        out = self.decoder(latent)
        return out[:, :, : self.spec.height, : self.spec.width]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training pass: (reconstruction through the rounded latent, bits per sample under noise)."""
        y = self.encoder(x)
        noisy = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        rounded = y + (torch.round(y) - y).detach()  # straight-through: forward rounds, backward is identity
        return self.decode(rounded), self.prior.bits(noisy)

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


@torch.no_grad()
def prior_tables(prior: FactorizedPrior, tail_mass: float = TAIL_MASS) -> tuple[np.ndarray, np.ndarray]:
    """Tabulate the prior for entropy coding: (offset (L,) int64, pmf (L, R) float64).

    Channel c codes integers offset[c] .. offset[c] + R - 1. Its range is the smallest one that
    leaves at most ``tail_mass`` / 2 of probability on either side; that mass is folded into the
    two edge bins (values beyond them are clamped when coded). Channels with narrower ranges than R
    are padded with zero-probability bins (the coder gives them a tiny floor).
    """
    grid = torch.arange(-MAX_RANGE, MAX_RANGE + 1, dtype=torch.float64)
    prior64 = _float64(prior)
    upper = prior64.cdf(grid.repeat(prior.logits.shape[0], 1) + 0.5).numpy()  # F(n + 1/2) per channel
    if (upper[:, 0] >= tail_mass / 2).any() or (upper[:, -1] < 1 - tail_mass / 2).any():
        raise ValueError(f"the prior spreads beyond +-{MAX_RANGE}; train with a larger beta")
    lows = (upper >= tail_mass / 2).argmax(1)  # first n with F(n + 1/2) >= tail / 2: less below it
    highs = (upper >= 1 - tail_mass / 2).argmax(1)  # first n with at most tail / 2 above it
    width = int((highs - lows).max()) + 1
    if width > MAX_RANGE:
        raise ValueError(f"the prior spreads over {width} integers, more than {MAX_RANGE}; train with a larger beta")
    pmf = np.zeros((len(lows), width))
    for c, (lo, hi) in enumerate(zip(lows, highs, strict=True)):
        cdf = np.concatenate([[0.0], upper[c, lo:hi], [1.0]])  # both tails join the edge bins
        pmf[c, : hi - lo + 1] = np.diff(cdf)
    return (lows - MAX_RANGE).astype(np.int64), np.clip(pmf, 0.0, None)


def _float64(prior: FactorizedPrior) -> FactorizedPrior:
    copy = FactorizedPrior(prior.logits.shape[0], prior.logits.shape[1]).double()
    copy.load_state_dict({k: v.double() for k, v in prior.state_dict().items()})
    return copy
