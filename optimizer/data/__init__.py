"""Datasets (by spec string) and their seeded train / calib / val / test splits."""

from __future__ import annotations

from optimizer.data._dataset import IMAGENET_MEAN, IMAGENET_STD, ImageDataset, Indices, SplitSizes, normalize
from optimizer.data._fashion_mnist import FashionMNIST
from optimizer.data._idx import read_idx
from optimizer.data._imagefolder import ImageFolder
from optimizer.data._preprocessing import INTERPOLATIONS, RESIZE_POLICIES, Preprocessing
from optimizer.data._specs import DATASET_KINDS, DEFAULT_DATASET, open_dataset
from optimizer.data._splits import SPLIT_NAMES, DataSplits, make_splits

__all__ = [
    "DATASET_KINDS",
    "DEFAULT_DATASET",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "INTERPOLATIONS",
    "RESIZE_POLICIES",
    "Preprocessing",
    "SPLIT_NAMES",
    "DataSplits",
    "FashionMNIST",
    "ImageDataset",
    "ImageFolder",
    "Indices",
    "SplitSizes",
    "make_splits",
    "normalize",
    "open_dataset",
    "read_idx",
]
