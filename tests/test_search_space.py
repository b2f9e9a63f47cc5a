"""Search-space files: the shipped ones load; malformed ones name file, field and rule."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from optimizer.codecs import CodecChoices
from optimizer.config import load_search_space
from optimizer.errors import UserError
from optimizer.models import load_bottleneck
from optimizer.search import SearchChoices, resolve_models

SPACES = Path(__file__).resolve().parents[1] / "search_spaces"


@pytest.mark.parametrize("path", sorted(SPACES.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_spaces_load_and_resolve(path: Path) -> None:
    space = load_search_space(path)
    assert space.name == path.stem and space.models
    assert CodecChoices.of(space).places() == {"input", "activation", "output"}
    if "imagenet" not in path.stem:  # the ImageNet space needs weight files of the user's
        models = resolve_models(space)
        assert all(m.ks and m.input_sizes for m in models.values())


def test_the_default_space_offers_the_block_boundaries_of_four_widths() -> None:
    models = resolve_models(load_search_space(SPACES / "mobilenetv2-fashion-mnist.yaml"))
    assert [str(s) for s in models] == [f"mobilenetv2:alpha={a}" for a in ("0.35", "0.5", "0.75", "1.0")]
    for model in models.values():
        assert len(model.ks) == 21 and model.ks[0] == 0 and model.ks[-1] == model.last_k
        assert model.input_sizes == (32, 48, 64, 96)


def test_the_bottleneck_space_lists_the_shipped_bottlenecks() -> None:
    space = load_search_space(SPACES / "mobilenetv2-fashion-mnist-bottleneck.yaml")
    offered = {o.codec.kind: o.choices for o in CodecChoices.of(space).offers}
    splits = {"features.6", "features.10"}  # the older block numbering's k = 7 and 11
    trained = offered["bottleneck"]
    assert {(b.split, b.beta) for b in trained} == {(s, b) for s in splits for b in (1e-4, 3e-4, 1e-3, 3e-3)}
    for choice in trained:
        bn = load_bottleneck(choice.file)  # refuses weights that differ from the card's SHA-256
        assert (choice.model, bn.card["input_size"]) == ("mobilenetv2:alpha=1.0", 64)
        assert bn.card["val_accuracy_coded"] > 0.85 and bn.card["payload_bytes_mean"] < 200, bn.card
    choices = SearchChoices.of(space)
    placed = {site.k: len(names) for site in choices.sites() for _, names in choices.codecs.variants(site)}
    assert placed == {12: 4, 18: 4}  # features.6 and features.10 as fx split points, four betas each


def test_imagenet_space_is_the_papers() -> None:
    space = load_search_space(SPACES / "mobilenetv2-imagenet.yaml")
    assert [m.spec for m in space.models] == [f"mobilenetv2:alpha={a}" for a in (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)]
    assert {m.input_sizes for m in space.models} == {(96, 128, 160, 192, 224)}


def test_the_older_form_reads_as_one_model_per_alpha(tmp_path: Path) -> None:
    doc = yaml.safe_load((SPACES / "mobilenetv2-fashion-mnist.yaml").read_text())
    for key in ("models", "cuts", "weights", "input_sizes"):
        doc.pop(key)
    doc |= {"family": "mobilenetv2", "weights": "file:/w/m_{alpha}.pt", "alphas": [0.5, 1.0]}
    doc |= {"input_sizes": [64], "splits": {"min": 3, "max": 20}}
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(doc))
    space = load_search_space(path)
    assert [(m.spec, m.weights, m.cut_range) for m in space.models] == [
        ("mobilenetv2:alpha=0.5", "file:/w/m_0.5.pt", (3, 20)),
        ("mobilenetv2:alpha=1.0", "file:/w/m_1.pt", (3, 20)),
    ]
    model = resolve_models(space)["mobilenetv2:alpha=1.0"]
    assert model.ks == model.blocks[3:]  # block k = 3..20, as fx split points


def test_models_take_the_defaults_and_override_them(tmp_path: Path) -> None:
    doc = yaml.safe_load((SPACES / "mobilenetv2-fashion-mnist.yaml").read_text())
    doc["models"] = [{"spec": "resnet18", "input_sizes": [64], "cuts": ["layer1", "layer3"]}, "mobilenetv2"]
    path = tmp_path / "mixed.yaml"
    path.write_text(yaml.safe_dump(doc))
    space = load_search_space(path)
    assert space.models[0].cuts == ("layer1", "layer3") and space.models[1].cuts == "blocks"
    assert space.models[1].input_sizes == (32, 48, 64, 96) and space.models[1].weights == "zoo"
    resnet = resolve_models(space)["resnet18"]
    assert [resnet.names[k] for k in resnet.ks] == ["layer1_1_relu_1", "layer3_1_relu_1"]


BAD = {
    "unknown key": (lambda d: d.update(trials=5), "trials: unknown key"),
    "missing": (lambda d: d.pop("samples"), "samples: is required"),
    "codec section": (lambda d: d.update(pcaa={"bits": [4]}), "pcaa: unknown key (codec sections: bottleneck, image"),
    "not a section": (lambda d: d.update(image=[1, 2]), "image: unknown key (fields: cuts, dataset"),
    "pca keys": (lambda d: d["pca"].update(zip=1), "pca.zip: unknown key"),
    "empty list": (lambda d: d.update(models=[]), "models: must be a non-empty list"),
    "bad coder": (lambda d: d["pca"].update(coders=["zip"]), "pca.coders: values must be among huffman, ans, ctx"),
    "model key": (lambda d: d["models"][0].update(alpha=1), "models[0].alpha: unknown key"),
    "cuts": (lambda d: d.update(cuts="some"), "cuts: must be all or blocks or a list"),
    "quality": (lambda d: d["image"].update(qualities=[101]), "image.qualities: values must be <= 100"),
    "twice": (lambda d: d["models"].append({"spec": d["models"][0]["spec"]}), "twice; list each model spec once"),
    "repeats": (lambda d: d["pca"].update(bits=[4, 4]), "must not repeat"),
    "no sizes": (lambda d: d.pop("input_sizes"), "models[0]: needs input_sizes"),
    "older form": (lambda d: [d.pop("models"), d.pop("cuts"), d.update(family="mobilenetv2")], "alphas: is required"),
}


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda d: d["models"].__setitem__(0, {"spec": "nosuchnet"}), "unknown model family 'nosuchnet'"),
        (lambda d: d["models"][0].update(cuts=["layer9"]), "no split point named 'layer9'"),
        (lambda d: d["models"][0].update(input_sizes=[16]), "at least 32 pixels"),
    ],
)
def test_models_the_registry_refuses_say_why(tmp_path: Path, edit: object, needle: str) -> None:
    doc = yaml.safe_load((SPACES / "mobilenetv2-fashion-mnist.yaml").read_text())
    edit(doc)  # type: ignore[operator]
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(UserError, match=needle):
        resolve_models(load_search_space(path))


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_space(tmp_path: Path, case: str) -> None:
    doc = yaml.safe_load((SPACES / "mobilenetv2-fashion-mnist.yaml").read_text())
    edit, needle = BAD[case]
    edit(doc)
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(UserError) as info:
        CodecChoices.of(load_search_space(path))  # the codecs read their own sections
    assert str(path) in str(info.value) and needle in str(info.value)


def test_a_space_needs_a_codec_wherever_its_cuts_reach(tmp_path: Path) -> None:
    doc = yaml.safe_load((SPACES / "mobilenetv2-fashion-mnist.yaml").read_text())
    doc.pop("image")
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(
        UserError, match=r"offers split 0 \(input, the input\) but the space has no codec for the input"
    ):
        SearchChoices.of(load_search_space(path))
    doc["models"] = [{"spec": "mobilenetv2:alpha=0.35", "cuts": ["features.3", "logits"]}]
    path.write_text(yaml.safe_dump(doc))
    assert SearchChoices.of(load_search_space(path)).codecs.places() == {"activation", "output"}
