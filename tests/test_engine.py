"""The evaluation engine: scores match a direct computation, payloads are real, caches are reused,
and one forward of a model serves every split point of the space."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_K, TINY_MODEL

from optimizer.config import ModelChoice
from optimizer.data import FashionMNIST, ImageFolder, make_splits
from optimizer.models import build_mobilenetv2
from optimizer.search import Config, Evaluator, resolve_model

PCA = {"kind": "pca", "geometry": "channel", "tile": 1, "components": 4, "bits": 4, "coder": "ans"}


@pytest.fixture
def weights(tmp_path: Path) -> str:
    """The bundled trained 0.35 model as a file of its own (its logits are O(10), so predictions that
    should agree cannot agree by accident, as a fresh network's ~1e-9 logits could)."""
    from optimizer.models._zoo import ZOO_DIR

    path = tmp_path / "w.pt"
    shutil.copy(ZOO_DIR / "mobilenetv2_0.35_fashion-mnist.pt", path)
    return f"file:{path}"


def _evaluator(
    dataset: FashionMNIST | ImageFolder, weights: str, cache: Path | None, cuts: str = "blocks"
) -> Evaluator:
    model = resolve_model(ModelChoice(TINY_MODEL, weights, (32,), cuts))
    return Evaluator(dataset, make_splits(dataset), {model.spec: model}, {"calib": 20, "val": 30}, cache_dir=cache)


def _count_forwards(ev: Evaluator, monkeypatch: pytest.MonkeyPatch, split: str = "val") -> list[list[int]]:
    """The ks of every forward over ``split``'s images from now on."""
    calls: list[list[int]] = []
    real = ev._taps

    def counted(spec: str, size: int, of: str, ks: list[int]) -> list[np.ndarray]:
        if of == split:
            calls.append(list(ks))
        return real(spec, size, of, ks)

    monkeypatch.setattr(ev, "_taps", counted)
    return calls


def test_float16_split_scores_like_the_model(fake_fashion: FashionMNIST, weights: str) -> None:
    ev = _evaluator(fake_fashion, weights, None)
    k = TINY_K["float16"]
    config = Config.make(TINY_MODEL, 32, k, {"kind": "float16"})
    result = ev.evaluate(config)
    graph = ev.graph(TINY_MODEL, 32)
    x = torch.from_numpy(ev.inputs(TINY_MODEL, 32, "val"))
    with torch.no_grad():
        acts = graph.head(k)(x).numpy().astype(np.float16).astype(np.float32)
        expected = graph.tail(k)(torch.from_numpy(acts)).argmax(1).numpy()
    labels = fake_fashion.labels[ev.indices("val")]
    np.testing.assert_array_equal(result.correct, expected == labels)
    shape = acts.shape[1:]
    assert (result.payload_bytes == len(ev.codec(config).encode(acts[0]))).all()
    assert result.payload_bytes[0] > 2 * int(np.prod(shape))  # body plus a header


def test_pca_image_and_class_id_configs(fake_fashion: FashionMNIST, weights: str) -> None:
    ev = _evaluator(fake_fashion, weights, None)
    pca = ev.evaluate(Config.make(TINY_MODEL, 32, TINY_K["pca"], PCA))
    assert pca.payload_bytes.mean() < 200 and pca.encode_macs > 0 and len(pca.correct) == 30
    png = ev.evaluate(Config.make(TINY_MODEL, 32, 0, {"kind": "image", "format": "png", "quality": 75}))
    assert png.payload_bytes.min() > 16 and png.encode_macs == 0
    local = ev.evaluate(Config.make(TINY_MODEL, 32, TINY_K["class-id"], {"kind": "class-id"}))
    with torch.no_grad():
        direct = ev.graph(TINY_MODEL, 32).model(torch.from_numpy(ev.inputs(TINY_MODEL, 32, "val"))).argmax(1)
    np.testing.assert_array_equal(local.correct, direct.numpy() == fake_fashion.labels[ev.indices("val")])
    assert (local.payload_bytes == 3).all()  # tag byte, length byte, one byte of class


def test_one_forward_serves_every_split_of_the_space(
    fake_fashion: FashionMNIST, weights: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ev = _evaluator(fake_fashion, weights, None)
    forwards = _count_forwards(ev, monkeypatch)
    first = ev.activations(TINY_MODEL, 32, 10, "val")
    assert len(forwards) == 1 and sorted(forwards[0]) == [k for k in ev.space_model(TINY_MODEL).ks if k > 0]
    for k in (1, 18, 32, 35):  # every other split of the space comes from that forward
        ev.activations(TINY_MODEL, 32, k, "val")
    assert len(forwards) == 1
    with torch.no_grad():
        head = ev.graph(TINY_MODEL, 32).head(10)(torch.from_numpy(ev.inputs(TINY_MODEL, 32, "val")))
    np.testing.assert_allclose(first, head.numpy().astype(np.float16).astype(np.float32), atol=2e-3, rtol=2e-3)


def test_evaluate_many_runs_each_model_once_and_scores_as_evaluate(
    fake_fashion: FashionMNIST, weights: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    configs = [
        Config.make(TINY_MODEL, 32, TINY_K["pca"], PCA),
        Config.make(TINY_MODEL, 32, TINY_K["float16"], {"kind": "float16"}),
        Config.make(TINY_MODEL, 32, 0, {"kind": "image", "format": "png", "quality": 100}),
    ]
    one_by_one = _evaluator(fake_fashion, weights, None)
    expected = {c: one_by_one.evaluate(c, "test") for c in configs}
    ev = _evaluator(fake_fashion, weights, None)
    forwards = _count_forwards(ev, monkeypatch, "test")
    ticks: list[int] = []
    got = ev.evaluate_many(configs, "test", lambda: ticks.append(1))
    assert len(ticks) == 3
    assert [sorted(f) for f in forwards] == [[TINY_K["pca"], TINY_K["float16"]]]  # one forward for both
    for config in configs:
        np.testing.assert_array_equal(got[config].correct, expected[config].correct)
        np.testing.assert_array_equal(got[config].payload_bytes, expected[config].payload_bytes)


def test_the_image_at_k0_is_resized_and_cropped_as_every_other_split(imagefolder_root: Path, tmp_path: Path) -> None:
    """PNG is lossless, so with the same preprocessing at k = 0 as at the other splits, sending the
    image scores exactly what running the whole model on the device scores (non-square images)."""
    torch.manual_seed(0)
    model = build_mobilenetv2(0.35, 3)
    torch.save(model.state_dict(), tmp_path / "w3.pt")
    dataset = ImageFolder(str(imagefolder_root))
    ev = _evaluator(dataset, f"file:{tmp_path / 'w3.pt'}", None)
    png = ev.evaluate(Config.make(TINY_MODEL, 32, 0, {"kind": "image", "format": "png", "quality": 100}))
    local = ev.evaluate(Config.make(TINY_MODEL, 32, TINY_K["class-id"], {"kind": "class-id"}))
    np.testing.assert_array_equal(png.correct, local.correct)


def test_activations_survive_in_the_disk_cache(
    fake_fashion: FashionMNIST, weights: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _evaluator(fake_fashion, weights, tmp_path / "cache").activations(TINY_MODEL, 32, 10, "val")
    assert list((tmp_path / "cache" / "activations").glob("*.npy"))
    again_ev = _evaluator(fake_fashion, weights, tmp_path / "cache")
    forwards = _count_forwards(again_ev, monkeypatch)
    again = again_ev.activations(TINY_MODEL, 32, 10, "val")
    np.testing.assert_array_equal(first, again)
    again_ev.activations(TINY_MODEL, 32, 18, "val")  # written by the first evaluator's single forward
    assert forwards == []


def test_disk_cache_is_keyed_by_the_weights_content_and_capped(
    fake_fashion: FashionMNIST, weights: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    _evaluator(fake_fashion, weights, cache, cuts=["features.4"]).activations(TINY_MODEL, 32, 10, "val")
    torch.manual_seed(1)
    torch.save(build_mobilenetv2(0.35, 10).state_dict(), weights.removeprefix("file:"))  # retrained weights
    _evaluator(fake_fashion, weights, cache, cuts=["features.4"]).activations(TINY_MODEL, 32, 10, "val")
    assert len(list((cache / "activations").glob("*.npy"))) == 2  # a new entry, not the stale one
    monkeypatch.setenv("SPLIT_OPT_CACHE_MAX_GB", "1e-9")
    _evaluator(fake_fashion, weights, cache, cuts=["features.5"]).activations(TINY_MODEL, 32, 11, "val")
    assert len(list((cache / "activations").glob("*.npy"))) == 1  # only the newest survives the cap
    _evaluator(fake_fashion, weights, cache, cuts=["features.5"]).activations(TINY_MODEL, 32, 11, "test")
    assert len(list((cache / "activations").glob("*.npy"))) == 1  # the test split is never written


def test_activations_are_float32_from_every_cache(fake_fashion: FashionMNIST, weights: str, tmp_path: Path) -> None:
    ev = _evaluator(fake_fashion, weights, tmp_path / "cache")
    computed = ev.activations(TINY_MODEL, 32, 10, "val")
    from_memory = ev.activations(TINY_MODEL, 32, 10, "val")
    from_disk = _evaluator(fake_fashion, weights, tmp_path / "cache").activations(TINY_MODEL, 32, 10, "val")
    for acts in (computed, from_memory, from_disk):
        assert acts.dtype == np.float32
        np.testing.assert_array_equal(acts, computed)
    from_memory[:] = 0  # a caller's change does not reach the cache
    assert ev.activations(TINY_MODEL, 32, 10, "val").any()


def test_logits_of_the_last_split_stay_exact(fake_fashion: FashionMNIST, weights: str) -> None:
    ev = _evaluator(fake_fashion, weights, None)
    logits = ev.activations(TINY_MODEL, 32, TINY_K["class-id"], "val")
    assert not np.array_equal(logits, logits.astype(np.float16).astype(np.float32))


def _disk_path(ev: Evaluator, k: int = 10, split: str = "val") -> Path | None:
    return ev.store.path(ev._identity(TINY_MODEL, 32, split), ev.space_model(TINY_MODEL).names[k], split)


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
        paths.append(_disk_path(_evaluator(dataset, weights, tmp_path / "cache")))
    assert paths[0] != paths[1] and paths[0] == paths[2]
    ev = _evaluator(FashionMNIST(), weights, tmp_path / "cache")
    monkeypatch.setattr(ev, "indices", lambda split: np.array([1, 4]))
    first = _disk_path(ev)
    monkeypatch.setattr(ev, "indices", lambda split: np.array([2, 3]))  # same sum, same count
    assert _disk_path(ev) != first
