"""Data layer: IDX parsing, Fashion-MNIST roots, image folders, and the four splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_fake_fashion, write_idx

from optimizer.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    FashionMNIST,
    ImageFolder,
    SplitSizes,
    make_splits,
    open_dataset,
    read_idx,
)
from optimizer.data._fashion_mnist import ENV_VAR
from optimizer.errors import UserError


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4)])
def test_idx_round_trip(tmp_path: Path, gz: bool, shape: tuple[int, ...]) -> None:
    array = np.arange(int(np.prod(shape)), dtype=np.uint8).reshape(shape)
    write_idx(tmp_path / "x-idx", array, gz)
    path = tmp_path / ("x-idx.gz" if gz else "x-idx")
    np.testing.assert_array_equal(read_idx(path), array)


def test_idx_rejects_truncated_and_foreign_files(tmp_path: Path) -> None:
    write_idx(tmp_path / "x", np.zeros((4, 4), np.uint8), gz=False)
    raw = (tmp_path / "x").read_bytes()
    (tmp_path / "short").write_bytes(raw[:-3])
    with pytest.raises(UserError, match="truncated"):
        read_idx(tmp_path / "short")
    (tmp_path / "foreign").write_bytes(b"PK\x03\x04whatever")
    with pytest.raises(UserError, match="not an IDX file"):
        read_idx(tmp_path / "foreign")


@pytest.mark.parametrize("layout", [".", "FashionMNIST/raw"])
@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_layouts(tmp_path: Path, layout: str, gz: bool) -> None:
    root = make_fake_fashion(tmp_path / "r", n_train=30, n_test=20, layout=layout, gz=gz)
    ds = FashionMNIST(str(root))
    assert len(ds) == 50 and ds.num_classes == 10
    assert list(ds.official_train) == list(range(30)) and list(ds.official_test) == list(range(30, 50))
    assert ds.native(0).shape == (28, 28)


def test_fashion_mnist_env_var(fake_fashion_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(fake_fashion_root))
    assert len(open_dataset("fashion-mnist")) == 300


def test_fashion_mnist_missing_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="apt-get install -y dataset-fashion-mnist"):
        open_dataset(f"fashion-mnist:{tmp_path / 'nowhere'}")
    (tmp_path / "half").mkdir()
    write_idx(tmp_path / "half" / "train-images-idx3-ubyte", np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(UserError, match="t10k-images-idx3-ubyte"):
        open_dataset(f"fashion-mnist:{tmp_path / 'half'}")


def test_batch_is_normalised_three_channel_at_any_size(fake_fashion: FashionMNIST) -> None:
    for size in (32, 64):
        x = fake_fashion.batch([0, 1, 2], size)
        assert x.shape == (3, 3, size, size) and x.dtype == torch.float32
    # A black pixel maps to -mean/std in every channel.
    black = fake_fashion.images01([0], 28).clone()
    black.zero_()
    from optimizer.data import normalize

    expected = -torch.tensor(IMAGENET_MEAN) / torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(normalize(black)[0, :, 0, 0], expected)


def test_splits_are_disjoint_deterministic_and_seeded(fake_fashion: FashionMNIST) -> None:
    sizes = SplitSizes(calib=20, val=30, test=40)
    a, b = make_splits(fake_fashion, sizes, seed=3), make_splits(fake_fashion, sizes, seed=3)
    c = make_splits(fake_fashion, sizes, seed=4)
    assert a.sizes() == {"train": 200, "calib": 20, "val": 30, "test": 40}
    parts = [set(a[n].tolist()) for n in ("train", "calib", "val", "test")]
    assert sum(len(p) for p in parts) == len(set().union(*parts))
    for name in ("calib", "val", "test"):
        np.testing.assert_array_equal(a[name], b[name])
        assert set(a[name]) <= set(fake_fashion.official_test.tolist())
    assert not np.array_equal(a.test, c.test)
    np.testing.assert_array_equal(a.train, fake_fashion.official_train)


def test_splits_fractions_and_limits(fake_fashion: FashionMNIST) -> None:
    s = make_splits(fake_fashion, SplitSizes(calib=0.2, val=0.3, test=0.5, train=50))
    assert s.sizes() == {"train": 50, "calib": 20, "val": 30, "test": 50}
    with pytest.raises(UserError, match="need 150 samples but the pool holds 100"):
        make_splits(fake_fashion, SplitSizes(calib=50, val=50, test=50))
    with pytest.raises(UserError, match="fraction"):
        make_splits(fake_fashion, SplitSizes(calib=1.5))


def test_imagefolder_has_no_official_split_so_train_is_the_rest(imagefolder_root: Path) -> None:
    ds = open_dataset(f"imagefolder:{imagefolder_root}")
    assert isinstance(ds, ImageFolder) and ds.classes == ["class_0", "class_1", "class_2"]
    s = make_splits(ds, SplitSizes(calib=3, val=4, test=5))
    assert s.sizes() == {"train": 24, "calib": 3, "val": 4, "test": 5}
    all_idx = np.concatenate([s.train, s.calib, s.val, s.test])
    assert sorted(all_idx.tolist()) == list(range(36))
    x = ds.images01([0, 20], 32)
    assert x.shape == (2, 3, 32, 32) and float(x.min()) >= 0 and float(x.max()) <= 1
    # class_0 images are red-dominant after the resize and crop too
    assert float(x[0, 0].mean()) > float(x[0, 1].mean())


def test_imagefolder_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such folder"):
        open_dataset(f"imagefolder:{tmp_path / 'missing'}")
    (tmp_path / "one" / "only").mkdir(parents=True)
    with pytest.raises(UserError, match="at least 2 class"):
        open_dataset(f"imagefolder:{tmp_path / 'one'}")
    with pytest.raises(UserError, match="needs a path"):
        open_dataset("imagefolder")


def test_imagefolder_corrupt_image_is_a_user_error(imagefolder_root: Path) -> None:
    (imagefolder_root / "class_0" / "img_0.png").write_bytes(b"not a png")
    ds = open_dataset(f"imagefolder:{imagefolder_root}")
    with pytest.raises(UserError, match="cannot decode"):
        ds.images01([0], 32)


def test_unknown_spec_lists_valid_ones() -> None:
    with pytest.raises(UserError, match="fashion-mnist, fashion-mnist:ROOT, imagefolder:PATH"):
        open_dataset("cifar10")
