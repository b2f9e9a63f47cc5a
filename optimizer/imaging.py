"""Model preprocessing without torch (numpy + Pillow): the one path from an image to model input.

A model spec declares a :class:`Preprocessing` (torchvision's weights bring theirs; zoo cards and a
user's factory may declare their own). :func:`model_input` applies it, and every consumer calls
this function: the datasets (the study, training, evaluation), the server at k = 0 (the decoded
image that crossed the network) and the deployed device half, which must not import torch.
So the device computes exactly the input the study scored, and k = 0 sees the same resize and
crop as every other split.

Resize policies:

- ``resize_crop``: the shorter side goes to ``round(size / crop_fraction)``, then a centre crop of
  ``size`` x ``size`` (torchvision's ImageNet evaluation: 256 -> 224 is ``crop_fraction = 0.875``;
  ``crop_fraction = 1`` on a square image is a plain resize);
- ``stretch``: the whole image is resized to ``size`` x ``size`` (no crop).

Interpolation ``bilinear`` is torch's ``F.interpolate(mode="bilinear", align_corners=False)``,
antialiased along an axis that shrinks (``antialias=True``), computed as one (out x in) weight
matrix per axis in float64 (tests/test_imaging.py checks it against torch to 1e-6); ``bicubic``
and ``nearest`` use Pillow on float32 images (no rounding to uint8).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image

from optimizer.errors import UserError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "INTERPOLATIONS",
    "RESIZE_POLICIES",
    "Preprocessing",
    "legacy_preprocessing",
    "model_input",
    "resize_bilinear",
    "to_mode",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE_POLICIES = ("resize_crop", "stretch")
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
_PILLOW_FILTERS = {"bicubic": Image.Resampling.BICUBIC, "nearest": Image.Resampling.NEAREST}


@dataclass(frozen=True)
class Preprocessing:
    """How images become model input. ``mean`` and ``std`` are per channel, on images scaled to [0, 1]."""

    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    resize: str = "resize_crop"
    crop_fraction: float = 1.0
    interpolation: str = "bilinear"
    channels: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if self.channels not in (1, 3):
            raise UserError(f"preprocessing channels must be 1 or 3, got {self.channels!r}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise UserError(
                f"preprocessing needs one mean and one std per channel ({self.channels}), "
                f"got mean {list(self.mean)} and std {list(self.std)}"
            )
        if any(s <= 0 for s in self.std):
            raise UserError(f"preprocessing std must be positive, got {list(self.std)}")
        if self.resize not in RESIZE_POLICIES:
            raise UserError(f"resize policy must be one of {', '.join(RESIZE_POLICIES)}, got {self.resize!r}")
        if not 0 < self.crop_fraction <= 1:
            raise UserError(f"crop_fraction must be in (0, 1], got {self.crop_fraction!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise UserError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {self.interpolation!r}")

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["mean"], out["std"] = list(self.mean), list(self.std)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Preprocessing:
        """The inverse of :meth:`to_json`; unknown keys are errors, missing ones take the defaults."""
        if not isinstance(data, dict):
            raise UserError(f"preprocessing must be a mapping, got {type(data).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"unknown preprocessing keys {unknown}; the known ones are {sorted(known)}")
        return cls(**data)


def legacy_preprocessing(name: str) -> Preprocessing:
    """Bundles written before preprocessing travelled named a path: ``grey`` (Fashion-MNIST) or
    ``rgb-crop`` (image folders); both fed ImageNet-normalised three-channel input."""
    if name not in ("grey", "rgb-crop"):
        raise UserError(f"bundle preprocessing {name!r} is unknown; re-export the bundle with this split-opt")
    return Preprocessing()


def to_mode(image: np.ndarray, channels: int) -> np.ndarray:
    """uint8 H x W (grey) or H x W x 3 (RGB) -> the model's channel count: (H, W) for 1, (H, W, 3) for 3.
    Colour to grey is Pillow's ``convert("L")`` (ITU-R 601-2 luma); grey to colour repeats the channel."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise UserError(f"an image must be uint8 H x W or H x W x 3, got {image.dtype} {image.shape}")
    if channels == 1:
        return image if image.ndim == 2 else np.asarray(Image.fromarray(image).convert("L"))
    return image if image.ndim == 3 else np.repeat(image[:, :, None], 3, axis=2)


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
    """Antialiased bilinear when shrinking: a triangle filter of half-width ``scale``, normalised
    (float32 arithmetic, as torch's)."""
    f32 = np.float32
    scale = f32(n_in) / f32(n_out)
    invscale = f32(1) / scale
    weights = np.zeros((n_out, n_in))
    for i in range(n_out):
        center = scale * (f32(i) + f32(0.5))
        lo = max(int(center - scale + f32(0.5)), 0)
        hi = min(int(center + scale + f32(0.5)), n_in)
        offsets = (np.arange(lo, hi, dtype=f32) - center + f32(0.5)) * invscale
        taps = np.maximum(f32(0), f32(1) - np.abs(offsets)).astype(f32)
        weights[i, lo:hi] = taps / taps.sum(dtype=f32)
    return weights


def _weights(n_in: int, n_out: int) -> np.ndarray:
    return _antialias_weights(n_in, n_out) if n_out < n_in else _linear_weights(n_in, n_out)


def resize_bilinear(images: np.ndarray, out_h: int, out_w: int | None = None) -> np.ndarray:
    """Images (..., H, W) -> (..., out_h, out_w), float32, as torch's bilinear ``F.interpolate``
    (antialiased along an axis that shrinks)."""
    h, w = images.shape[-2:]
    rows, cols = _weights(h, out_h), _weights(w, out_w or out_h)
    out = np.einsum("oh,...hw,pw->...op", rows, images.astype(np.float64), cols, optimize=True)
    return out.astype(np.float32)


def _resize_pillow(images: np.ndarray, out_h: int, out_w: int, interpolation: str) -> np.ndarray:
    """(C, H, W) float32 -> (C, out_h, out_w) with a Pillow filter, channel by channel in mode F."""
    flt = _PILLOW_FILTERS[interpolation]
    return np.stack(
        [np.asarray(Image.fromarray(c.astype(np.float32), mode="F").resize((out_w, out_h), flt)) for c in images]
    ).astype(np.float32)


def _target(h: int, w: int, size: int, prep: Preprocessing) -> tuple[int, int]:
    """The size the whole image is resized to before the centre crop."""
    if prep.resize == "stretch":
        return size, size
    short = round(size / prep.crop_fraction)
    scale = short / min(h, w)
    return max(size, round(h * scale)), max(size, round(w * scale))


def _crop(images: np.ndarray, size: int) -> np.ndarray:
    """Centre crop of (..., H, W), offsets rounded as torchvision's ``center_crop``."""
    h, w = images.shape[-2:]
    top, left = round((h - size) / 2.0), round((w - size) / 2.0)
    return images[..., top : top + size, left : left + size]


def _resized01(planes: np.ndarray, size: int, prep: Preprocessing) -> np.ndarray:
    """Same-shape images (N, C, H, W) in [0, 1] -> (N, C, size, size)."""
    h, w = planes.shape[-2:]
    out_h, out_w = _target(h, w, size, prep)
    if (out_h, out_w) != planes.shape[-2:]:
        if prep.interpolation == "bilinear":
            planes = np.clip(resize_bilinear(planes, out_h, out_w), 0, 1)
        else:
            planes = np.stack([_resize_pillow(p, out_h, out_w, prep.interpolation) for p in planes])
    return _crop(planes, size)


def model_input(natives: Sequence[np.ndarray], size: int, prep: Preprocessing) -> np.ndarray:
    """Native images (uint8 grey H x W or RGB H x W x 3, any sizes) -> model input (N, C, size, size),
    float32: channels converted, resized by the policy, normalised with the model's mean and std."""
    if len(natives) == 0:
        raise UserError("no images to preprocess; give at least one image")
    # NOTE: grey images stay one plane through the resize (the same values, a third of the work)
    # and are repeated to the model's channels after it.
    images = [to_mode(np.asarray(img), 1) if prep.channels == 1 else _checked(img) for img in natives]
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, img in enumerate(images):
        groups.setdefault(img.shape, []).append(i)
    out = np.empty((len(images), prep.channels, size, size), dtype=np.float32)
    for shape, index in groups.items():  # one vectorised resize per image shape
        stack = np.stack([images[i] for i in index]).astype(np.float32) / np.float32(255)
        planes = stack[:, None] if len(shape) == 2 else stack.transpose(0, 3, 1, 2)
        out[index] = _resized01(planes, size, prep)  # broadcasts one grey plane to three channels
    mean = np.asarray(prep.mean, dtype=np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(prep.std, dtype=np.float32).reshape(1, -1, 1, 1)
    return ((out - mean) / std).astype(np.float32, copy=False)


def _checked(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    to_mode(image[:1, :1] if image.ndim in (2, 3) else image, 3)  # the dtype and shape rules, on one pixel
    return image
