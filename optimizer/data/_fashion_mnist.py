"""Fashion-MNIST, the embedded default: 60,000 train and 10,000 test images, 28x28 grey, 10 classes.

Looked for, in order: the root in the spec (``fashion-mnist:ROOT``), the environment variable
``SPLIT_OPT_FASHION_MNIST``, then Debian's package ``dataset-fashion-mnist``. A root may hold the
IDX files directly or in torchvision's layout (``ROOT/FashionMNIST/raw/``), gzipped or not.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from optimizer.data._dataset import ImageDataset, Indices
from optimizer.data._idx import read_idx
from optimizer.errors import UserError

__all__ = ["DEBIAN_ROOT", "ENV_VAR", "FashionMNIST"]

DEBIAN_ROOT = Path("/usr/share/datasets/fashion-mnist")
ENV_VAR = "SPLIT_OPT_FASHION_MNIST"
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_SUBDIRS = (".", "FashionMNIST/raw", "raw")


def _find_file(root: Path, stem: str) -> Path | None:
    for sub in _SUBDIRS:
        for name in (stem + ".gz", stem):
            candidate = root / sub / name
            if candidate.is_file():
                return candidate
    return None


def _missing_message(problem: str) -> str:
    return (
        f"Fashion-MNIST {problem}; install it with "
        f"`apt-get install -y dataset-fashion-mnist`, or point `--dataset fashion-mnist:ROOT` "
        f"or ${ENV_VAR} at a folder holding the IDX files (torchvision's FashionMNIST root works)"
    )


def _find_root(root: str | None) -> Path:
    chosen = root or os.environ.get(ENV_VAR)
    return Path(chosen).expanduser() if chosen else DEBIAN_ROOT


@functools.lru_cache(maxsize=4)
def _load_arrays(root: Path) -> tuple[np.ndarray, np.ndarray, int]:
    paths = {key: _find_file(root, stem) for key, stem in _FILES.items()}
    missing = [key for key, path in paths.items() if path is None]
    if missing:
        names = ", ".join(_FILES[key] for key in missing)
        raise UserError(_missing_message(f"files missing in {root}: {names} (.gz or plain)"))
    arrays = {key: read_idx(path) for key, path in paths.items() if path is not None}
    images = np.concatenate([arrays["train_images"], arrays["test_images"]])
    labels = np.concatenate([arrays["train_labels"], arrays["test_labels"]]).astype(np.int64)
    if images.ndim != 3 or len(images) != len(labels):
        raise UserError(
            f"Fashion-MNIST files in {root} disagree: {images.shape} images, "
            f"{labels.shape} labels; re-install the dataset"
        )
    return images, labels, len(arrays["train_labels"])


class FashionMNIST(ImageDataset):
    """Fashion-MNIST with its official train/test split; grey images replicated to 3 channels.

    The default split sizes (fractions 0.2 / 0.3 / 0.5 of the official test split) give
    calib = 2,000, val = 3,000 and test = 5,000 images.
    """

    def __init__(self, root: str | None = None) -> None:
        self.root = _find_root(root)
        if not self.root.is_dir():
            raise UserError(_missing_message(f"not found: {self.root} is not a folder"))
        self.spec = f"fashion-mnist:{root}" if root else "fashion-mnist"
        self._images, self.labels, n_train = _load_arrays(self.root)
        self.classes = list(CLASSES)
        self.official_train = np.arange(n_train)
        self.official_test = np.arange(n_train, len(self.labels))

    def native(self, index: int) -> np.ndarray:
        return self._images[index]

    def natives(self, indices: Indices) -> list[np.ndarray]:
        return list(self._images[np.asarray(indices, dtype=np.int64)])
