"""Image preprocessing shared by the datasets, the search's image codecs and the deployed halves.

One definition each, so that a deployed device half (``optimizer.deploy``) turns an image file into
exactly the model input the study scored (the deployed halves run the torch-free twins in
``optimizer.imaging``, tested equal to these):

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

from optimizer.data._dataset import normalize
from optimizer.imaging import resize_crop  # Pillow only: one definition for both paths

__all__ = ["decoded_image_input", "grey_input01", "resize_crop"]


def grey_input01(images: np.ndarray, size: int) -> torch.Tensor:
    """Grey uint8 images (N, H, W) -> float images in [0, 1], shape (N, 3, size, size)."""
    grey = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255).unsqueeze(1)
    if grey.shape[-1] != size:
        grey = F.interpolate(
            grey, size=(size, size), mode="bilinear", align_corners=False, antialias=size < grey.shape[-1]
        ).clamp_(0, 1)
    return grey.expand(-1, 3, -1, -1).contiguous()


def decoded_image_input(image: np.ndarray, size: int) -> torch.Tensor:
    """A decoded native image (uint8 H x W or H x W x 3) -> normalised model input (3, size, size)."""
    x = torch.from_numpy(image.astype(np.float32) / 255)
    x = x.unsqueeze(0).expand(3, -1, -1) if x.ndim == 2 else x.permute(2, 0, 1)
    x = F.interpolate(x[None], size=(size, size), mode="bilinear", align_corners=False)[0]
    return normalize(x[None])[0]
