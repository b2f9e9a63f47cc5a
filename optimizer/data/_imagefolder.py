"""``imagefolder:PATH``: one sub-folder per class (ImageNet val arranged by class, CIFAR as PNGs).

Images are decoded with Pillow and converted to RGB; the model's preprocessing (optimizer.imaging)
resizes and crops them. Class names are the sorted sub-folder names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from optimizer.data._dataset import ImageDataset, SplitSizes
from optimizer.errors import UserError

__all__ = ["IMAGE_SUFFIXES", "ImageFolder"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".pgm", ".tif", ".tiff"})


def _scan(root: Path) -> tuple[list[str], list[Path], np.ndarray]:
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    paths: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        for path in sorted((root / name).rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                paths.append(path)
                labels.append(label)
    return classes, paths, np.asarray(labels, dtype=np.int64)


class ImageFolder(ImageDataset):
    """A folder of class sub-folders; it has no official test split, so all splits are carved."""

    default_sizes = SplitSizes(calib=0.1, val=0.1, test=0.1)

    def __init__(self, path: str) -> None:
        self.root = Path(path).expanduser()
        self.spec = f"imagefolder:{path}"
        if not self.root.is_dir():
            raise UserError(
                f"imagefolder:{path}: no such folder; give a folder with one sub-folder of images per class"
            )
        self.classes, self._paths, self.labels = _scan(self.root)
        if len(self.classes) < 2 or len(self._paths) == 0:
            raise UserError(
                f"imagefolder:{path} holds {len(self.classes)} class folder(s) and "
                f"{len(self._paths)} image(s); it needs at least 2 class sub-folders of "
                f"images ({', '.join(sorted(IMAGE_SUFFIXES))})"
            )

    def _open(self, index: int) -> Image.Image:
        path = self._paths[index]
        try:
            with Image.open(path) as image:
                return image.convert("RGB")
        except (OSError, UnidentifiedImageError) as exc:
            raise UserError(f"cannot decode image {path}: {exc}; remove or replace the file") from exc

    def native(self, index: int) -> np.ndarray:
        return np.asarray(self._open(index), dtype=np.uint8)
