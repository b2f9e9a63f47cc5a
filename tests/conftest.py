"""Shared fixtures: tiny datasets written by the tests themselves, never downloaded."""

from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from optimizer.data import FashionMNIST
from optimizer.models import build_mobilenetv2

# One thread: the tests' nets are tiny, and results stay the same on any machine.
torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every test, and every process a test starts, caches under a temporary folder: the suite never
    reads or writes the user's ~/.cache/split-opt (a stale entry there could hide a bug)."""
    before = os.environ.get("SPLIT_OPT_CACHE_DIR")
    folder = tmp_path_factory.mktemp("split-opt-cache")
    os.environ["SPLIT_OPT_CACHE_DIR"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("SPLIT_OPT_CACHE_DIR", None)
    else:
        os.environ["SPLIT_OPT_CACHE_DIR"] = before


def write_idx(path: Path, array: np.ndarray, gz: bool = True) -> None:
    """Write a uint8 array in the IDX format (what Debian and torchvision ship)."""
    header = b"\x00\x00\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def make_fake_fashion(
    root: Path, n_train: int = 200, n_test: int = 100, layout: str = ".", gz: bool = True, seed: int = 0
) -> Path:
    """A Fashion-MNIST-shaped dataset whose class is readable from the image (bright band row)."""
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            images[i, 2 + 2 * label : 4 + 2 * label, :] = 255
        write_idx(root / layout / f"{prefix}-images-idx3-ubyte", images, gz)
        write_idx(root / layout / f"{prefix}-labels-idx1-ubyte", labels, gz)
    return root


@pytest.fixture
def fake_fashion_root(tmp_path: Path) -> Path:
    return make_fake_fashion(tmp_path / "fmnist")


@pytest.fixture
def fake_fashion(fake_fashion_root: Path) -> FashionMNIST:
    return FashionMNIST(str(fake_fashion_root))


def make_imagefolder(root: Path, classes: int = 3, per_class: int = 12, size: tuple[int, int] = (40, 30)) -> Path:
    """Tiny RGB PNGs, one folder per class; each class has its own dominant colour."""
    rng = np.random.default_rng(1)
    for c in range(classes):
        folder = root / f"class_{c}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 60, (size[1], size[0], 3)).astype(np.uint8)
            pixels[..., c % 3] = 220
            Image.fromarray(pixels).save(folder / f"img_{i}.png")
    return root


@pytest.fixture
def imagefolder_root(tmp_path: Path) -> Path:
    return make_imagefolder(tmp_path / "folder")


TINY_MODEL = "mobilenetv2:alpha=0.35"
# The tiny space's block boundaries (cuts: blocks): the older block k = 5, 10 and 20 are these fx ks.
TINY_K = {"pca": 10, "float16": 17, "class-id": 35}


def write_tiny_space(root: Path, fashion_root: Path, weights: str | None = None, **overrides: object) -> Path:
    """A search space over one random alpha-0.35 model at 32 px on the fake Fashion-MNIST in
    ``fashion_root``, at its block boundaries: weights and root/tiny.yaml are written under ``root``;
    ``weights`` replaces the random weights (e.g. ``zoo``); other keys can be overridden."""
    torch.manual_seed(0)
    torch.save(build_mobilenetv2(0.35, 10).state_dict(), root / "w_0.35.pt")
    doc = {
        "name": "tiny",
        "description": "a tiny space for tests",
        "dataset": f"fashion-mnist:{fashion_root}",
        "models": [
            {"spec": TINY_MODEL, "weights": weights or f"file:{root}/w_0.35.pt", "input_sizes": [32], "cuts": "blocks"}
        ],
        "pca": {"geometry": ["channel"], "components": [2, 4], "bits": [2, 4], "coders": ["ans"]},
        "image": {"formats": ["png", "jpeg"], "qualities": [50]},
        "samples": {"calib": 20, "val": 30},
        **overrides,
    }
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


# The tiny study and its PCA bundle, shared by the deploy, stream, trust, imaging and device tests
# (deploy_fixtures imports this module, so it is imported inside the fixtures).
@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from deploy_fixtures import shared_tiny_study

    return shared_tiny_study(tmp_path_factory)


@pytest.fixture(scope="module")
def pca_bundle(tiny: Any) -> Path:
    return Path(tiny.export(tiny.trial_of(k=TINY_K["pca"], codec="pca"), "pca"))
