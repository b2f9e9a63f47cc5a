"""The dataset interface every spec resolves to.

A dataset holds images "as the device has them" (``native``) and turns any of them into model
input at a given square size with a model's preprocessing (``batch``), through the one torch-free
path the deployed device half runs too (optimizer.imaging.model_input). The default preprocessing
(ImageNet mean and std, three channels) is what the bundled zoo and torchvision's weights expect.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from optimizer.imaging import IMAGENET_MEAN, IMAGENET_STD, Preprocessing, model_input

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ImageDataset", "Indices", "SplitSizes", "normalize"]

# Sample indices: a list or an integer array.
Indices = Sequence[int] | np.ndarray


@dataclass(frozen=True)
class SplitSizes:
    """How many samples go to calib, val and test (and train, ``None`` = all that is left).

    Each size is a count (int) or a fraction of the pool it is carved from (float in (0, 1)).
    """

    calib: float = 0.2
    val: float = 0.3
    test: float = 0.5
    train: float | None = None


_UNNORMALISED = Preprocessing(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


def normalize(images01: torch.Tensor) -> torch.Tensor:
    """Map float images in [0, 1], shape (N, 3, H, W), to the model's input space."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=images01.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=images01.dtype).view(1, 3, 1, 1)
    return (images01 - mean) / std


class ImageDataset(abc.ABC):
    """A labelled image classification dataset.

    Attributes:
        spec: the dataset spec string it was opened from (``fashion-mnist``, ``imagefolder:PATH``).
        classes: class names, index = label.
        labels: int64 array with one label per sample.
        official_train / official_test: index arrays of the dataset's own train/test split, or
            ``None`` when it has none (then every split is carved from all samples).
        default_sizes: the split sizes used when the user gives none.
    """

    spec: str
    classes: list[str]
    labels: np.ndarray
    official_train: np.ndarray | None = None
    official_test: np.ndarray | None = None
    default_sizes: SplitSizes = SplitSizes()

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @abc.abstractmethod
    def native(self, index: int) -> np.ndarray:
        """The image as the device captures it: uint8, shape (H, W) or (H, W, 3)."""

    def natives(self, indices: Indices) -> list[np.ndarray]:
        return [self.native(int(i)) for i in indices]

    def images01(self, indices: Indices, size: int) -> torch.Tensor:
        """Float images in [0, 1], shape (N, 3, size, size), resized as :meth:`batch` resizes them
        (training augments these, then normalises them)."""
        return torch.from_numpy(model_input(self.natives(indices), size, _UNNORMALISED))

    def batch(self, indices: Indices, size: int, prep: Preprocessing | None = None) -> torch.Tensor:
        """Model input for the given samples at a square input size (default: ImageNet statistics,
        three channels)."""
        return torch.from_numpy(model_input(self.natives(indices), size, prep or Preprocessing()))
