"""Dataset specs: the strings users type after ``--dataset``.

``fashion-mnist`` (the embedded default), ``fashion-mnist:ROOT``, ``imagefolder:PATH``.
"""

from __future__ import annotations

from collections.abc import Callable

from optimizer.data._dataset import ImageDataset
from optimizer.data._fashion_mnist import FashionMNIST
from optimizer.data._imagefolder import ImageFolder
from optimizer.errors import UserError

__all__ = ["DATASET_KINDS", "DEFAULT_DATASET", "open_dataset"]

DEFAULT_DATASET = "fashion-mnist"


def _fashion(arg: str | None) -> ImageDataset:
    return FashionMNIST(arg)


def _imagefolder(arg: str | None) -> ImageDataset:
    if not arg:
        raise UserError("dataset spec 'imagefolder' needs a path: imagefolder:PATH")
    return ImageFolder(arg)


DATASET_KINDS: dict[str, Callable[[str | None], ImageDataset]] = {
    "fashion-mnist": _fashion,
    "imagefolder": _imagefolder,
}


def open_dataset(spec: str) -> ImageDataset:
    """Open the dataset a spec names, or raise :class:`UserError` saying what is valid."""
    kind, _, arg = spec.partition(":")
    if kind not in DATASET_KINDS:
        raise UserError(
            f"unknown dataset spec {spec!r}; use one of: fashion-mnist, fashion-mnist:ROOT, imagefolder:PATH"
        )
    return DATASET_KINDS[kind](arg or None)
