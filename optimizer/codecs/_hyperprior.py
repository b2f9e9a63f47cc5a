"""The hyperprior's entropy coder: a bottleneck latent coded with per-element Gaussians whose means
and scales follow from a coded side latent (optimizer.models._hyperprior trains the nets).

Encoding one latent y (L, h, w) of integers: the hyper-encoder (two 3x3 convolutions, numpy)
gives the side latent z, rounded; the hyper-decoder gives a mean and a scale per element of y,
snapped to a grid (means to multiples of ``MEAN_STEP``, scales to the nearest of ``SCALES`` in
log) so that the device and the server, which compute them independently in float64, agree on
every probability unless a value lands within rounding noise of a grid boundary. One ANS stack
(constriction) holds y under ``QuantizedGaussian(-Y, Y)`` with those means and scales, then z under
its factorized prior tabulated per channel (as the factorized bottleneck codes its latent); the
decoder pops z, recomputes the means and scales, and pops y. The nets run in numpy from their
weights, which are part of the codec state, so the device side needs no torch.
"""

from __future__ import annotations

import functools
import math

import constriction
import numpy as np

from optimizer.codecs._entropy import ans_stack
from optimizer.codecs._errors import CodecError

__all__ = ["HYPER_KEYS", "LATENT_BOUND", "MEAN_STEP", "SCALES", "HyperpriorCoder", "conv3x3"]

LATENT_BOUND = 255  # y is coded in -Y..Y (the head graph clamps it there)
SCALE_MIN, SCALE_MAX = 0.11, 64.0  # as optimizer.models._hyperprior
SCALES = np.exp(np.linspace(math.log(SCALE_MIN), math.log(SCALE_MAX), 64))
MEAN_STEP = 1.0 / 64
# state arrays: hyper-encoder and hyper-decoder convolutions (weight, bias), the side prior's tables
HYPER_KEYS = ("he1_w", "he1_b", "he2_w", "he2_b", "hd1_w", "hd1_b", "hd2_w", "hd2_b", "z_offset", "z_counts")


@functools.lru_cache(maxsize=64)
def _im2col(c: int, h: int, w: int, stride: int, up: int) -> np.ndarray:
    """For a 3x3 convolution (padding 1) of a (C, H, W) input upsampled by ``up`` (nearest): indices
    into the flattened input with one zero appended (index C * H * W, the padding), (C * 9, positions)."""
    uh, uw = h * up, w * up
    oh, ow = (uh - 1) // stride + 1, (uw - 1) // stride + 1
    rows = (np.arange(oh) * stride)[:, None] + np.arange(3)[None, :] - 1  # (oh, 3) upsampled row per tap
    cols = (np.arange(ow) * stride)[:, None] + np.arange(3)[None, :] - 1
    inside = ((rows >= 0) & (rows < uh)).T[:, None, :, None] & ((cols >= 0) & (cols < uw)).T[None, :, None, :]
    flat = (rows.T // up)[:, None, :, None] * w + (cols.T // up)[None, :, None, :]  # (3 dy, 3 dx, oh, ow)
    idx = np.where(inside[None], np.arange(c)[:, None, None, None, None] * h * w + flat[None], c * h * w)
    return idx.reshape(c * 9, oh * ow)


def conv3x3(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int = 1, up: int = 1) -> np.ndarray:
    """A 3x3 convolution with zero padding 1 of one (C, H, W) array, optionally upsampled by ``up``
    (nearest) first, in float64 (as torch's Upsample + Conv2d): one product over gathered patches."""
    c, h, w = x.shape
    oh, ow = (h * up - 1) // stride + 1, (w * up - 1) // stride + 1
    patches = np.append(x.ravel(), 0.0)[_im2col(c, h, w, stride, up)]
    out = np.asarray(weight, dtype=np.float64).reshape(len(weight), -1) @ patches
    return (out + np.asarray(bias, dtype=np.float64)[:, None]).reshape(-1, oh, ow)


class HyperpriorCoder:
    """Symbols (h * w, L) in 0..2Y <-> one ANS body; the model is the hyperprior's nets and tables."""

    def __init__(self, arrays: dict[str, np.ndarray], shape: tuple[int, int, int]) -> None:
        missing = [k for k in HYPER_KEYS if k not in arrays]
        if missing:
            raise CodecError(f"hyperprior codec state lacks {', '.join(missing)}")
        self.state = {k: np.asarray(arrays[k]) for k in HYPER_KEYS}
        self.shape = shape
        self.alphabet = 2 * LATENT_BOUND + 1
        latent, side = shape[0], self.state["he2_w"].shape[0] if self.state["he2_w"].ndim == 4 else -1
        expected = {
            "he1_w": (None, latent, 3, 3),
            "he2_w": (side, None, 3, 3),
            "hd1_w": (None, side, 3, 3),
            "hd2_w": (2 * latent, None, 3, 3),
            "z_offset": (side,),
        }
        for key, dims in expected.items():
            got = self.state[key].shape
            if len(got) != len(dims) or any(d is not None and d != g for d, g in zip(dims, got, strict=True)):
                raise CodecError(f"hyperprior codec state {key!r} has shape {got}, expected {dims} (None: any)")
        counts = self.state["z_counts"]
        if counts.ndim != 2 or counts.shape[0] != side or counts.shape[1] < 2 or (counts <= 0).any():
            raise CodecError(f"hyperprior 'z_counts' must be positive ({side}, >= 2), got {counts.shape}")
        self.side = side
        pmf = counts / counts.sum(axis=1, keepdims=True)
        self._z_models = [constriction.stream.model.Categorical(p, perfect=False) for p in pmf]
        self._y_model = constriction.stream.model.QuantizedGaussian(-LATENT_BOUND, LATENT_BOUND)
        self.z_shape = (side, (shape[1] - 1) // 2 + 1, (shape[2] - 1) // 2 + 1)

    # --- the nets ------------------------------------------------------------------------------
    def side_latent(self, y: np.ndarray) -> np.ndarray:
        """y (L, h, w) -> z symbols (Z, hz, wz), clamped to the side prior's range."""
        s = self.state
        hidden = np.maximum(conv3x3(y, s["he1_w"], s["he1_b"]), 0.0)
        z = np.rint(conv3x3(hidden, s["he2_w"], s["he2_b"], stride=2)).astype(np.int64)
        return np.clip(z - s["z_offset"][:, None, None], 0, s["z_counts"].shape[1] - 1)

    def mean_scale(self, z_symbols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """z symbols -> y's means and scales (flat, in (L, h, w) order), on the codec's grid."""
        s = self.state
        z = (z_symbols + s["z_offset"][:, None, None]).astype(np.float64)
        hidden = np.maximum(conv3x3(z, s["hd1_w"], s["hd1_b"], up=2), 0.0)
        out = conv3x3(hidden, s["hd2_w"], s["hd2_b"])[:, : self.shape[1], : self.shape[2]]
        latent = self.shape[0]
        mean = np.rint(out[:latent] / MEAN_STEP) * MEAN_STEP
        log_scale = np.clip(out[latent:], math.log(SCALE_MIN), math.log(SCALE_MAX))
        step = (math.log(SCALE_MAX) - math.log(SCALE_MIN)) / (len(SCALES) - 1)
        scale = SCALES[np.rint((log_scale - math.log(SCALE_MIN)) / step).astype(np.int64)]
        return np.clip(mean, -LATENT_BOUND, LATENT_BOUND).ravel(), scale.ravel()

    # --- coding ----------------------------------------------------------------------------------
    def encode(self, symbols: np.ndarray) -> bytes:
        y = symbols.T.reshape(self.shape) - LATENT_BOUND
        z = self.side_latent(y.astype(np.float64))
        mean, scale = self.mean_scale(z)
        coder = constriction.stream.stack.AnsCoder()
        coder.encode_reverse(np.ascontiguousarray(y.ravel(), dtype=np.int32), self._y_model, mean, scale)
        zc = z.reshape(self.side, -1)
        for c in reversed(range(self.side)):  # a stack: z comes out first
            coder.encode_reverse(np.ascontiguousarray(zc[c], dtype=np.int32), self._z_models[c])
        return coder.get_compressed().astype("<u4").tobytes()

    def decode(self, body: bytes, positions: int) -> np.ndarray:
        n_z = self.z_shape[1] * self.z_shape[2]
        coder = ans_stack(body)
        z = np.stack([np.asarray(coder.decode(m, n_z), dtype=np.int64) for m in self._z_models])
        mean, scale = self.mean_scale(z.reshape(self.z_shape))
        y = np.asarray(coder.decode(self._y_model, mean, scale), dtype=np.int64)
        return (y + LATENT_BOUND).reshape(self.shape[0], positions).T

    def max_body_bytes(self) -> int:
        """A bound: each symbol costs at most ~24 bits under constriction's leaky models, plus flush words."""
        return (int(np.prod(self.shape)) + int(np.prod(self.z_shape))) * 4 + 64

    def macs(self) -> int:
        """Multiply-adds of the hyper-decoder (both sides) for one latent."""
        hidden = self.state["hd1_w"].shape[0]  # both convolutions run at twice z's resolution
        return 4 * self.z_shape[1] * self.z_shape[2] * hidden * 9 * (self.side + 2 * self.shape[0])

    def encoder_macs(self) -> int:
        """Multiply-adds of the hyper-encoder (device side)."""
        s, (latent, h, w) = self.state, self.shape
        hidden = s["he1_w"].shape[0]
        return h * w * hidden * latent * 9 + self.z_shape[1] * self.z_shape[2] * self.side * hidden * 9
