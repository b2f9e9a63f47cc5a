"""The evaluation engine: scores match a direct computation, payloads are real, caches are reused."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from optimizer.data import FashionMNIST, make_splits
from optimizer.models import build_head, build_mobilenetv2, build_tail
from optimizer.search import Config, Evaluator


@pytest.fixture
def weights(tmp_path: Path) -> str:
    """The bundled trained 0.35 model as a file of its own (its logits are O(10), so predictions that
    should agree cannot agree by accident, as a fresh network's ~1e-9 logits could)."""
    from optimizer.models._zoo import ZOO_DIR

    path = tmp_path / "w.pt"
    shutil.copy(ZOO_DIR / "mobilenetv2_0.35_fashion-mnist.pt", path)
    return f"file:{path}"


def _evaluator(dataset: FashionMNIST, weights: str, cache: Path | None) -> Evaluator:
    return Evaluator(dataset, make_splits(dataset), weights, {"calib": 20, "val": 30}, cache_dir=cache)


def test_float16_split_scores_like_the_model(fake_fashion: FashionMNIST, weights: str) -> None:
    ev = _evaluator(fake_fashion, weights, None)
    config = Config.make(0.35, 32, 7, {"kind": "float16"})
    result = ev.evaluate(config)
    model = ev.model(0.35, 32)
    x = ev.inputs(32, "val")
    with torch.no_grad():
        acts = build_head(model, 7)(x).numpy().astype(np.float16).astype(np.float32)
        expected = build_tail(model, 7)(torch.from_numpy(acts)).argmax(1).numpy()
    labels = fake_fashion.labels[ev.indices("val")]
    np.testing.assert_array_equal(result.correct, expected == labels)
    shape = acts.shape[1:]
    assert (result.payload_bytes == len(ev.codec(config).encode(acts[0]))).all()
    assert result.payload_bytes[0] > 2 * int(np.prod(shape))  # body plus a header


def test_pca_image_and_class_id_configs(fake_fashion: FashionMNIST, weights: str) -> None:
    ev = _evaluator(fake_fashion, weights, None)
    pca = ev.evaluate(Config.make(0.35, 32, 7, {"kind": "pca", "components": 4, "bits": 4, "coder": "ans"}))
    assert pca.payload_bytes.mean() < 200 and pca.encode_macs > 0 and len(pca.correct) == 30
    png = ev.evaluate(Config.make(0.35, 32, 0, {"kind": "image", "format": "png", "quality": 75}))
    assert png.payload_bytes.min() > 16 and png.encode_macs == 0
    local = ev.evaluate(Config.make(0.35, 32, 20, {"kind": "class-id"}))
    with torch.no_grad():
        direct = ev.model(0.35, 32)(ev.inputs(32, "val")).argmax(1).numpy()
    np.testing.assert_array_equal(local.correct, direct == fake_fashion.labels[ev.indices("val")])
    assert (local.payload_bytes == local.payload_bytes[0]).all() and local.payload_bytes[0] <= 16


def test_activations_survive_in_the_disk_cache(
    fake_fashion: FashionMNIST, weights: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _evaluator(fake_fashion, weights, tmp_path / "cache").activations(0.35, 32, 5, "val")
    assert list((tmp_path / "cache" / "activations").glob("*.npy"))

    def no_forward(*args: object) -> None:
        raise AssertionError("the head ran although its activations were cached on disk")

    monkeypatch.setattr("optimizer.search._engine.build_head", no_forward)
    again = _evaluator(fake_fashion, weights, tmp_path / "cache").activations(0.35, 32, 5, "val")
    np.testing.assert_array_equal(first, again)


def test_disk_cache_is_keyed_by_the_weights_content_and_capped(
    fake_fashion: FashionMNIST, weights: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    _evaluator(fake_fashion, weights, cache).activations(0.35, 32, 5, "val")
    torch.manual_seed(1)
    torch.save(build_mobilenetv2(0.35, 10).state_dict(), weights.removeprefix("file:"))  # retrained weights
    _evaluator(fake_fashion, weights, cache).activations(0.35, 32, 5, "val")
    assert len(list((cache / "activations").glob("*.npy"))) == 2  # a new entry, not the stale one
    monkeypatch.setenv("SPLIT_OPT_CACHE_MAX_GB", "1e-9")
    _evaluator(fake_fashion, weights, cache).activations(0.35, 32, 6, "val")
    assert len(list((cache / "activations").glob("*.npy"))) == 1  # only the newest survives the cap
    _evaluator(fake_fashion, weights, cache).activations(0.35, 32, 6, "test")
    assert len(list((cache / "activations").glob("*.npy"))) == 1  # the test split is never written


def test_activations_are_float32_from_every_cache(fake_fashion: FashionMNIST, weights: str, tmp_path: Path) -> None:
    ev = _evaluator(fake_fashion, weights, tmp_path / "cache")
    computed = ev.activations(0.35, 32, 5, "val")
    from_memory = ev.activations(0.35, 32, 5, "val")
    from_disk = _evaluator(fake_fashion, weights, tmp_path / "cache").activations(0.35, 32, 5, "val")
    for acts in (computed, from_memory, from_disk):
        assert acts.dtype == np.float32
        np.testing.assert_array_equal(acts, computed)
    from_memory[:] = 0  # a caller's change does not reach the cache
    assert ev.activations(0.35, 32, 5, "val").any()


def test_cache_keys_come_from_the_content_not_the_spec(
    tmp_path: Path, weights: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two Fashion-MNIST roots behind the same spec string get their own entries; a copy of the same
    files shares them; two index arrays with the same sum and length do not collide."""
    from conftest import make_fake_fashion

    roots = [make_fake_fashion(tmp_path / name, seed=seed) for name, seed in (("a", 0), ("b", 1))]
    shutil.copytree(roots[0], tmp_path / "copy")
    paths = []
    for root in [*roots, tmp_path / "copy"]:
        monkeypatch.setenv("SPLIT_OPT_FASHION_MNIST", str(root))
        dataset = FashionMNIST()
        assert dataset.spec == "fashion-mnist"
        paths.append(_evaluator(dataset, weights, tmp_path / "cache")._disk_path((0.35, 32, 5, "val")))
    assert paths[0] != paths[1] and paths[0] == paths[2]
    ev = _evaluator(FashionMNIST(), weights, tmp_path / "cache")
    monkeypatch.setattr(ev, "indices", lambda split: np.array([1, 4]))
    first = ev._disk_path((0.35, 32, 5, "val"))
    monkeypatch.setattr(ev, "indices", lambda split: np.array([2, 3]))  # same sum, same count
    assert ev._disk_path((0.35, 32, 5, "val")) != first
