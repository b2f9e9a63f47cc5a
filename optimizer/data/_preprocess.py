"""Image preprocessing shared by the datasets, the search's image codecs and the deployed halves.

One definition each, so that a deployed device half (``optimizer.deploy``) turns an image file into
exactly the model input the study scored:

- :func:`grey_input01`: Fashion-MNIST's path (grey uint8 -> bilinear resize, antialiased when
  shrinking -> [0, 1] -> three channels);
- :func:`resize_crop`: image folders' path (shorter side to the input size, centre crop);
- :func:`decoded_image_input`: what the server does with an image that crossed the network at
  k = 0 (bilinear resize of the decoded native image, then normalisation).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from optimizer.data._dataset import normalize

__all__ = ["decoded_image_input", "grey_input01", "resize_crop"]


def grey_input01(images: np.ndarray, size: int) -> torch.Tensor:
    """Grey uint8 images (N, H, W) -> float images in [0, 1], shape (N, 3, size, size)."""
    grey = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255).unsqueeze(1)
    if grey.shape[-1] != size:
        grey = F.interpolate(
            grey, size=(size, size), mode="bilinear", align_corners=False, antialias=size < grey.shape[-1]
        ).clamp_(0, 1)
    return grey.expand(-1, 3, -1, -1).contiguous()


def resize_crop(image: Image.Image, size: int) -> np.ndarray:
    """An RGB image -> uint8 (size, size, 3): shorter side resized to ``size``, centre-cropped."""
    w, h = image.size
    scale = size / min(w, h)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    image = image.resize((new_w, new_h), Image.Resampling.BILINEAR)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)


def decoded_image_input(image: np.ndarray, size: int) -> torch.Tensor:
    """A decoded native image (uint8 H x W or H x W x 3) -> normalised model input (3, size, size)."""
    x = torch.from_numpy(image.astype(np.float32) / 255)
    x = x.unsqueeze(0).expand(3, -1, -1) if x.ndim == 2 else x.permute(2, 0, 1)
    x = F.interpolate(x[None], size=(size, size), mode="bilinear", align_corners=False)[0]
    return normalize(x[None])[0]
