"""The factorized prior of a learned bottleneck's latent (and of the hyperprior's side latent): per
channel a discretized mixture of logistics, and its tabulation for the ANS coder."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["MAX_RANGE", "TAIL_MASS", "FactorizedPrior", "prior_tables"]

TAIL_MASS = 1e-6  # probability left outside each channel's tabulated range (folded into the edges)
MAX_RANGE = 4096  # largest alphabet per channel the codec accepts


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
