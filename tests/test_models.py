"""Models: the split contract tail(head(x)) == model(x), split-point metadata, weight loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from optimizer.errors import UserError
from optimizer.imaging import Preprocessing, model_input
from optimizer.models import OnnxRunner, build_mobilenetv2, load_model, load_spec_model, split_graph
from optimizer.models._weights import TORCHVISION_FILE


def _trained_like(alpha: float, num_classes: int = 10) -> torch.nn.Module:
    """A model with non-trivial BatchNorm statistics, so eval-mode BN is not the identity."""
    torch.manual_seed(0)
    model = build_mobilenetv2(alpha, num_classes)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _zoo_graph(alpha: float, size: int):  # type: ignore[no-untyped-def]
    """The bundled trained model, traced: its logits are O(10), so a wrong split changes them visibly
    (a freshly initialised network's logits are about 1e-9, below any tolerance)."""
    built = load_spec_model(f"mobilenetv2:alpha={alpha}")
    return split_graph(built.spec, built.at_size(size))


def _fashion_like(n: int, size: int) -> torch.Tensor:
    """Model inputs from Fashion-MNIST-shaped images (bright garment shapes on dark), normalised."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
    for i in range(n):
        top, left = int(rng.integers(2, 10)), int(rng.integers(2, 10))
        images[i, top : top + 16, left : left + 12] = rng.integers(120, 255)
    return torch.from_numpy(model_input(list(images), size, Preprocessing()))


@pytest.mark.parametrize("alpha", [0.35, 1.0])
@pytest.mark.parametrize("size", [32, 64])
def test_tail_of_head_equals_the_trained_model_at_every_split(alpha: float, size: int) -> None:
    graph = _zoo_graph(alpha, size)
    x = _fashion_like(4, size)
    with torch.no_grad():
        reference = graph.model(x)
        scale = reference.abs().max().item()
        assert scale > 1.0, "the check needs logits of a trained model"
        for k in range(len(graph)):
            out = graph.tail(k)(graph.head(k)(x))
            assert (out - reference).abs().max().item() <= 1e-5 * scale, f"k={k}"
            assert torch.equal(out.argmax(1), reference.argmax(1)), f"k={k}"


@pytest.mark.parametrize("alpha", [0.35, 1.0])
def test_onnx_runtime_heads_and_tails_compute_the_same_function(alpha: float) -> None:
    graph = _zoo_graph(alpha, 48)
    x = _fashion_like(3, 48)
    last = len(graph) - 1
    with torch.no_grad():
        assert graph.model(x).abs().max().item() > 1.0
        for k in (1, 12, 32, last):
            head = graph.head(k)(x)
            ort_head = OnnxRunner(graph.head(k), (3, 48, 48))(x, batch=2)
            np.testing.assert_allclose(ort_head, head.numpy(), atol=1e-4, err_msg=f"head k={k}")
            if k < last:
                ort_tail = OnnxRunner(graph.tail(k), tuple(head.shape[1:]))(head.numpy())
                np.testing.assert_allclose(ort_tail, graph.model(x).numpy(), atol=1e-4, err_msg=f"tail k={k}")
    with pytest.raises(ValueError, match="expected a non-empty batch"):
        OnnxRunner(graph.head(1), (3, 48, 48))(np.zeros((2, 3, 32, 32), np.float32))


def test_the_ends_of_the_split_range() -> None:
    graph = split_graph("mobilenetv2:alpha=1.0", build_mobilenetv2(1.0, 10))
    assert len(graph) == 36
    assert isinstance(graph.head(0), torch.nn.Identity) and isinstance(graph.tail(35), torch.nn.Identity)
    with pytest.raises(UserError, match=r"split k must be in 0\.\.35"):
        graph.head(36)


def test_block_boundaries_match_torchvision_layout_at_224() -> None:
    graph = split_graph("mobilenetv2:alpha=1.0", build_mobilenetv2(1.0, 1000))
    points = graph.points(224, macs=False)
    by_block = [points[k] for k in graph.block_ks()]
    assert len(by_block) == 21
    assert (by_block[0].name, by_block[0].shape, by_block[0].elements) == ("input", (3, 224, 224), 150528)
    assert (by_block[1].module, by_block[1].shape, by_block[1].reduction) == ("features.0", (32, 112, 112), 2)
    assert by_block[2].shape == (16, 112, 112)
    assert by_block[4].shape == (24, 56, 56)
    assert by_block[7].shape == (32, 28, 28)
    assert by_block[14].shape == (96, 14, 14)
    assert by_block[17].shape == (160, 7, 7)
    assert by_block[18].shape == (320, 7, 7)
    assert (by_block[19].shape, by_block[19].reduction) == ((1280, 7, 7), 32) and "features.18" in by_block[19].modules
    assert (by_block[20].name, by_block[20].shape, by_block[20].elements) == ("logits", (1000,), 1000)


def test_split_points_scale_with_alpha_and_size() -> None:
    graph = split_graph("mobilenetv2:alpha=0.35", build_mobilenetv2(0.35, 10))
    points = graph.points(64, macs=False)
    blocks = graph.block_ks()
    assert points[blocks[1]].shape == (16, 32, 32)  # 32 * 0.35 rounds up to the channel multiple 8 -> 16
    assert points[blocks[19]].shape == (1280, 2, 2)  # alpha < 1 keeps the last 1280 channels
    assert points[-1].shape == (10,)


def test_input_size_rules() -> None:
    from optimizer.models import check_input_size

    for bad in (-3, 0, 31):
        with pytest.raises(UserError, match="at least 32"):
            check_input_size(bad)
    assert check_input_size(48) == 48


def test_file_weights_round_trip_half_precision(tmp_path: Path) -> None:
    model = _trained_like(0.35, num_classes=7)
    path = tmp_path / "w.pt"
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}, path)
    loaded = load_model(0.35, f"file:{path}")
    assert loaded.num_classes == 7 and loaded.entry is None
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), model.half().float()(x), atol=1e-3, rtol=1e-3)


def test_file_weights_wrapped_in_state_dict_key(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": build_mobilenetv2(0.5, 3).state_dict(), "epoch": 3}, path)
    assert load_model(0.5, f"file:{path}").num_classes == 3


def test_mismatched_weights_name_the_tensor_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "w.pt"
    torch.save(build_mobilenetv2(0.35, 10).state_dict(), path)
    with pytest.raises(UserError, match=r"do not fit MobileNetV2 alpha=1: features\.0\.0\.weight"):
        load_model(1.0, f"file:{path}")
    torch.save({"layer.weight": torch.zeros(10, 3)}, path)
    with pytest.raises(UserError, match="classifier.1.weight"):
        load_model(1.0, f"file:{path}")


def test_unreadable_and_pickled_weights_are_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a torch file")
    with pytest.raises(UserError, match="cannot read weight file"):
        load_model(1.0, f"file:{garbage}")
    pickled = tmp_path / "module.pt"
    torch.save(build_mobilenetv2(0.35, 10), pickled)  # a whole pickled module, not a state dict
    with pytest.raises(UserError, match="cannot read weight file"):
        load_model(0.35, f"file:{pickled}")
    with pytest.raises(UserError, match="does not exist"):
        load_model(1.0, f"file:{tmp_path / 'nope.pt'}")


def test_torchvision_weights_come_from_the_hub_cache_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old_dir = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub" / "hub"))
    try:
        with pytest.raises(UserError, match="not in the torch hub cache"):
            load_model(1.0, "torchvision")
        checkpoints = tmp_path / "hub" / "hub" / "checkpoints"
        checkpoints.mkdir(parents=True)
        torch.save(_trained_like(1.0, 1000).state_dict(), checkpoints / TORCHVISION_FILE)
        loaded = load_model(1.0, "torchvision")
        assert loaded.num_classes == 1000 and loaded.entry is not None and loaded.entry.source == "torchvision"
        with pytest.raises(UserError, match="for mobilenetv2:alpha=1.0, not mobilenetv2:alpha=0.5"):
            load_model(0.5, "torchvision")
    finally:
        torch.hub.set_dir(old_dir)


def test_unknown_weight_spec() -> None:
    with pytest.raises(UserError, match="zoo:NAME, torchvision or file:PATH"):
        load_model(1.0, "http://example.invalid/w.pt")
