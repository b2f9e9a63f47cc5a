"""A mean-scale hyperprior for the learned bottleneck's latent (Minnen et al. 2018, after Balle et al.
2018), the context-adaptive alternative to the factorized prior.

- hyper-encoder (device): conv3x3(L -> N) + ReLU + conv3x3(N -> Z, stride 2) on the rounded latent
  y; its output rounded is the side latent z, coded first with a factorized prior (per channel).
- hyper-decoder (both sides): nearest upsampling by 2 + conv3x3(Z -> N) + ReLU + conv3x3(N -> 2L),
  cropped to y's shape: a mean and a log-scale per latent element. y is then coded element by
  element with a Gaussian of that mean and scale, discretized to integers.

The rate term is the bits of z under its prior plus the bits of y under the predicted Gaussians,
both with uniform noise in training. The codec (optimizer.codecs._hyperprior) runs the same two
small nets in numpy from the weights as arrays, so the device needs no torch beyond its head graph
and both sides compute the same means and scales; it quantizes them to a grid (``SCALES`` and
``MEAN_STEP``) so a last-bit difference between machines almost never changes a probability.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from optimizer.models._bottleneck_prior import FactorizedPrior

__all__ = ["SCALE_MAX", "SCALE_MIN", "HyperPrior", "gaussian_likelihood", "hyperprior_arrays"]

SCALE_MIN, SCALE_MAX = 0.11, 64.0  # the Gaussian's scale range (CompressAI's lower bound); the codec's too


def gaussian_likelihood(y: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """P(y) of N(mean, scale) integrated over [y - 1/2, y + 1/2], computed on the lower tail
    (symmetric, so the difference of two small numbers stays precise)."""
    v = (y - mean).abs()
    k = 1.0 / (scale * math.sqrt(2.0))
    upper = 0.5 * torch.erfc((v - 0.5) * k)  # Phi((0.5 - v) / s)
    lower = 0.5 * torch.erfc((v + 0.5) * k)  # Phi((-0.5 - v) / s)
    return (upper - lower).clamp_min(1e-9)


class HyperPrior(nn.Module):
    """Hyper-encoder, hyper-decoder and the side latent's factorized prior for L latent channels."""

    def __init__(self, latent: int, hidden: int, side: int, mixtures: int = 3) -> None:
        super().__init__()
        self.latent = latent
        self.hyper_encoder = nn.Sequential(
            nn.Conv2d(latent, hidden, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(hidden, side, 3, 2, padding=1)
        )
        self.hyper_decoder = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(side, hidden, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 2 * latent, 3, padding=1),
        )
        self.side_prior = FactorizedPrior(side, mixtures)

    def side(self, y: torch.Tensor) -> torch.Tensor:
        """The side latent before rounding."""
        return self.hyper_encoder(y)  # type: ignore[no-any-return]

    def mean_scale(self, z: torch.Tensor, shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Rounded side latent -> per-element mean and scale of y, cropped to y's (h, w)."""
        out = self.hyper_decoder(z)[:, :, : shape[0], : shape[1]]
        mean, log_scale = out[:, : self.latent], out[:, self.latent :]
        return mean, log_scale.exp().clamp(SCALE_MIN, SCALE_MAX)

    def bits(self, y: torch.Tensor, noisy: bool) -> torch.Tensor:
        """Bits per sample of (z, y): with ``noisy``, the training relaxation (uniform noise on both,
        the hyper-decoder sees z rounded through a straight-through estimator); else the rate of
        the rounded y and z, the codec's model up to its quantized means and scales."""
        z = self.side(y + (torch.round(y) - y).detach())  # the device hyper-encodes the rounded latent
        z_hat = z + (torch.round(z) - z).detach()
        mean, scale = self.mean_scale(z_hat, (y.shape[2], y.shape[3]))
        if noisy:
            z_rate = z + torch.empty_like(z).uniform_(-0.5, 0.5)
            y_rate = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        else:
            z_rate, y_rate = torch.round(z), torch.round(y)
        y_bits = -torch.log2(gaussian_likelihood(y_rate, mean, scale)).flatten(1).sum(1)
        return self.side_prior.bits(z_rate) + y_bits


def hyperprior_arrays(hyper: HyperPrior) -> dict[str, np.ndarray]:
    """The side nets' weights as the codec's state arrays (``HYPER_KEYS`` of optimizer.codecs)."""
    convs = {"he1": hyper.hyper_encoder[0], "he2": hyper.hyper_encoder[2]}
    convs.update({"hd1": hyper.hyper_decoder[1], "hd2": hyper.hyper_decoder[3]})
    out = {}
    for name, conv in convs.items():
        assert isinstance(conv, nn.Conv2d) and conv.bias is not None
        out[f"{name}_w"] = conv.weight.detach().double().numpy().copy()
        out[f"{name}_b"] = conv.bias.detach().double().numpy().copy()
    return out
