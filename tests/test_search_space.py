"""Search-space files: the shipped ones load; malformed ones name file, field and rule."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from optimizer.config import load_search_space
from optimizer.errors import UserError
from optimizer.models import load_bottleneck

SPACES = Path(__file__).resolve().parents[1] / "search_spaces"


@pytest.mark.parametrize("name", ["mobilenetv2-fashion-mnist", "mobilenetv2-imagenet"])
def test_shipped_spaces_load(name: str) -> None:
    space = load_search_space(SPACES / f"{name}.yaml")
    assert space.name == name and space.k_min == 0 and space.k_max == 20


def test_the_bottleneck_space_lists_the_shipped_bottlenecks() -> None:
    space = load_search_space(SPACES / "mobilenetv2-fashion-mnist-bottleneck.yaml")
    assert {(b.k, b.beta) for b in space.bottlenecks} == {(k, b) for k in (7, 11) for b in (1e-4, 3e-4, 1e-3, 3e-3)}
    for choice in space.bottlenecks:
        bn = load_bottleneck(choice.file)  # refuses weights that differ from the card's SHA-256
        assert (bn.card["alpha"], bn.card["input_size"]) == (1.0, 64)
        assert bn.card["val_accuracy_coded"] > 0.85 and bn.card["payload_bytes_mean"] < 200, bn.card


def test_imagenet_space_is_the_papers() -> None:
    space = load_search_space(SPACES / "mobilenetv2-imagenet.yaml")
    assert space.alphas == (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
    assert space.input_sizes == (96, 128, 160, 192, 224)


BAD = {
    "unknown key": (lambda d: d.update(trials=5), "trials: unknown key"),
    "missing": (lambda d: d.pop("alphas"), "alphas: is required"),
    "empty list": (lambda d: d.update(alphas=[]), "alphas: must be a non-empty list"),
    "bad coder": (lambda d: d["pca"].update(coders=["zip"]), "pca.coders: values must be among ans, huffman"),
    "small input": (lambda d: d.update(input_sizes=[16]), "input_sizes: values must be >= 32"),
    "k range": (lambda d: d.update(splits={"min": 5, "max": 2}), "min <= max"),
    "quality": (lambda d: d["image"].update(qualities=[101]), "image.qualities: values must be <= 100"),
    "family": (lambda d: d.update(family="resnet"), "only mobilenetv2"),
    "repeats": (lambda d: d["pca"].update(bits=[4, 4]), "must not repeat"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_space(tmp_path: Path, case: str) -> None:
    doc = yaml.safe_load((SPACES / "mobilenetv2-fashion-mnist.yaml").read_text())
    edit, needle = BAD[case]
    edit(doc)
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(UserError) as info:
        load_search_space(path)
    assert str(path) in str(info.value) and needle in str(info.value)
