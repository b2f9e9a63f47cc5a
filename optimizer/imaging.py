"""Image preprocessing without torch (numpy + Pillow): what the deployed halves run.

The datasets (``optimizer.data``) preprocess whole batches with torch for training and the study;
the deployed device half and server half (``optimizer.deploy``) must not import torch, so they use
these functions, which compute the same tensors (tests/test_imaging.py checks them against the
torch path to 1e-6 on the images of every codec path):

- :func:`grey_input01`: Fashion-MNIST's path (grey uint8 -> bilinear resize, antialiased when
  shrinking, as ``F.interpolate(..., antialias=True)`` -> [0, 1] -> three channels);
- :func:`resize_crop`: image folders' path (shorter side to the input size, centre crop; Pillow,
  the one definition for both paths);
- :func:`decoded_image_input`: what the server does with an image that crossed the network at
  k = 0 (plain bilinear resize of the decoded native image, then normalisation).

Resizing is separable: one (out x in) weight matrix per axis, built with torch's rules
(``align_corners=False``; source index ``scale * (i + 0.5) - 0.5`` clamped at 0; for antialiasing,
a triangle filter widened by the scale and normalised per output pixel).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PREPROCESS",
    "decoded_image_input",
    "grey_input01",
    "model_input",
    "normalize",
    "resize_bilinear",
    "resize_crop",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PREPROCESS = ("grey", "rgb-crop")  # Fashion-MNIST's path, image folders' path


def normalize(images01: np.ndarray) -> np.ndarray:
    """Float images in [0, 1], shape (N, 3, H, W) -> the model's input space (float32)."""
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(IMAGENET_STD, dtype=np.float32).reshape(1, 3, 1, 1)
    return ((images01.astype(np.float32, copy=False) - mean) / std).astype(np.float32, copy=False)


def _linear_weights(n_in: int, n_out: int) -> np.ndarray:
    """Plain bilinear (align_corners=False): each output takes two neighbouring inputs. The source
    index and the weights are computed in float32, as torch computes them for float32 images (its
    ``scale * (i + 0.5) - 0.5`` compiles to one fused multiply-add: exact in float64, rounded once)."""
    f32 = np.float32
    scale = f32(n_in) / f32(n_out)
    half_steps = (np.arange(n_out, dtype=f32) + f32(0.5)).astype(np.float64)
    src = np.maximum((np.float64(scale) * half_steps - 0.5).astype(f32), f32(0))
    lo = np.minimum(src.astype(np.int64), n_in - 1)
    lam = np.clip(src - lo.astype(f32), f32(0), f32(1))
    hi = np.minimum(lo + 1, n_in - 1)
    weights = np.zeros((n_out, n_in))
    np.add.at(weights, (np.arange(n_out), lo), (f32(1) - lam).astype(np.float64))
    np.add.at(weights, (np.arange(n_out), hi), lam.astype(np.float64))
    return weights


def _antialias_weights(n_in: int, n_out: int) -> np.ndarray:
    """Antialiased bilinear: a triangle filter of half-width ``max(scale, 1)``, normalised (float32
    arithmetic, as torch's)."""
    f32 = np.float32
    scale = f32(n_in) / f32(n_out)
    support = scale if scale >= 1 else f32(1)
    invscale = f32(1) / scale if scale >= 1 else f32(1)
    weights = np.zeros((n_out, n_in))
    for i in range(n_out):
        center = scale * (f32(i) + f32(0.5))
        lo = max(int(center - support + f32(0.5)), 0)
        hi = min(int(center + support + f32(0.5)), n_in)
        offsets = (np.arange(lo, hi, dtype=f32) - center + f32(0.5)) * invscale
        taps = np.maximum(f32(0), f32(1) - np.abs(offsets)).astype(f32)
        weights[i, lo:hi] = taps / taps.sum(dtype=f32)
    return weights


def resize_bilinear(images: np.ndarray, size: int, antialias: bool = False) -> np.ndarray:
    """Images (..., H, W) -> (..., size, size), float32, as torch's bilinear ``F.interpolate``."""
    weights = _antialias_weights if antialias else _linear_weights
    h, w = images.shape[-2:]
    rows, cols = weights(h, size), weights(w, size)
    out = np.einsum("oh,...hw,pw->...op", rows, images.astype(np.float64), cols, optimize=True)
    return out.astype(np.float32)


def grey_input01(images: np.ndarray, size: int) -> np.ndarray:
    """Grey uint8 images (N, H, W) -> float images in [0, 1], shape (N, 3, size, size)."""
    grey = np.ascontiguousarray(images).astype(np.float32) / np.float32(255)
    if grey.shape[-1] != size:
        grey = np.clip(resize_bilinear(grey, size, antialias=size < grey.shape[-1]), 0, 1)
    return np.ascontiguousarray(np.broadcast_to(grey[:, None], (grey.shape[0], 3, size, size)))


def resize_crop(image: Image.Image, size: int) -> np.ndarray:
    """An RGB image -> uint8 (size, size, 3): shorter side resized to ``size``, centre-cropped."""
    w, h = image.size
    scale = size / min(w, h)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    image = image.resize((new_w, new_h), Image.Resampling.BILINEAR)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)


def model_input(natives: Sequence[np.ndarray], size: int, preprocess: str) -> np.ndarray:
    """Native images (grey H x W, or RGB H x W x 3 of any size) -> model input (N, 3, size, size),
    exactly as the dataset feeds the model."""
    if preprocess == "grey":
        return normalize(grey_input01(np.stack(natives), size))
    crops = np.stack([resize_crop(Image.fromarray(img), size) for img in natives]).astype(np.float32) / 255
    return normalize(np.ascontiguousarray(crops.transpose(0, 3, 1, 2)))


def decoded_image_input(image: np.ndarray, size: int) -> np.ndarray:
    """A decoded native image (uint8 H x W or H x W x 3) -> normalised model input (3, size, size)."""
    x = image.astype(np.float32) / 255
    x = np.broadcast_to(x, (3, *x.shape)) if x.ndim == 2 else x.transpose(2, 0, 1)
    return normalize(resize_bilinear(x, size)[None])[0]
