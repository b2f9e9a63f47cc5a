"""Model specs and the adapter registry: canonical round trips, building, weights, preprocessing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from optimizer.data import Preprocessing
from optimizer.errors import UserError
from optimizer.models import (
    ModelSpec,
    build_model,
    get_adapter,
    list_adapters,
    list_zoo,
    load_spec_model,
    parse_model_spec,
    specs_from_family,
)

FAMILIES = [a.family for a in list_adapters()]
USER_MODULE = "split_opt_test_user_model"


def _sample_spec(family: str) -> str:
    return "python:pkg.mod:make" if family == "python" else family


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_round_trips_its_spec(family: str) -> None:
    spec = parse_model_spec(_sample_spec(family))
    assert spec.family == family
    assert parse_model_spec(str(spec)) == spec and str(parse_model_spec(str(spec))) == str(spec)


def test_canonical_form_writes_defaults_and_one_number_format() -> None:
    assert str(parse_model_spec("mobilenetv2")) == "mobilenetv2:alpha=1.0"
    assert parse_model_spec("mobilenetv2:alpha=1") == parse_model_spec(" mobilenetv2:alpha = 1.00 ")
    assert str(parse_model_spec("mobilenetv2:alpha=0.350")) == "mobilenetv2:alpha=0.35"
    assert parse_model_spec("mobilenetv2:alpha=0.35").get("alpha") == 0.35
    assert str(parse_model_spec("resnet18")) == "resnet18" and str(parse_model_spec("python:a.b:c")) == "python:a.b:c"
    assert parse_model_spec("mobilenetv2:alpha=0.5") != parse_model_spec("mobilenetv2:alpha=0.75")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("vgg16", r"unknown model family 'vgg16'; the families are mobilenetv2, resnet18"),
        ("mobilenetv2:width=2", r"mobilenetv2 does not take; its parameters are alpha"),
        ("resnet18:alpha=1.0", r"its parameters are width"),
        ("mobilenet_v3_small:alpha=1.0", r"it takes no parameters"),
        ("mobilenetv2:alpha=big", r"alpha must be a float, got 'big'"),
        ("mobilenetv2:alpha=5", r"alpha must be in \(0.0, 4.0\], got 5.0"),
        ("mobilenetv2:alpha=1,alpha=2", r"gives alpha twice"),
        ("python:no_colon", r"python:package.module:factory"),
        ("", r"a model spec is FAMILY"),
    ],
)
def test_bad_specs_say_the_rule_and_the_fix(text: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_model_spec(text)


def test_family_and_alphas_map_onto_specs() -> None:
    specs = specs_from_family("mobilenetv2", [0.35, 1])
    assert [str(s) for s in specs] == ["mobilenetv2:alpha=0.35", "mobilenetv2:alpha=1.0"]
    with pytest.raises(UserError, match="resnet18 has no alpha"):
        specs_from_family("resnet18", [1.0])


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "python"])
def test_every_family_builds_for_a_number_of_classes(family: str) -> None:
    model = build_model(family, num_classes=7)
    assert not model.training
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)


def test_zoo_entries_carry_their_spec_and_load_through_it() -> None:
    entries = {e.name: e for e in list_zoo()}
    assert entries["mobilenetv2_0.35_fashion-mnist"].spec == "mobilenetv2:alpha=0.35"
    assert entries["mobilenetv2_0.35_fashion-mnist"].to_json()["spec"] == "mobilenetv2:alpha=0.35"
    built = load_spec_model("mobilenetv2:alpha=0.35")
    assert (built.weights, built.num_classes) == ("zoo:mobilenetv2_0.35_fashion-mnist", 10)
    assert built.bn_stats and built.at_size(32) is not built.model and len(built.fingerprint) == 64
    with pytest.raises(UserError, match="is a mobilenetv2:alpha=0.35, not a resnet18"):
        load_spec_model("resnet18", "zoo:mobilenetv2_0.35_fashion-mnist")
    with pytest.raises(UserError, match="the zoo has no resnet18 for dataset 'fashion-mnist'"):
        load_spec_model("resnet18")


def test_file_weights_give_the_number_of_classes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = build_model("resnet18", num_classes=7)
    path = tmp_path / "r18.pt"
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in source.state_dict().items()}, path)
    built = load_spec_model("resnet18", f"file:{path}")
    assert built.num_classes == 7 and built.entry is None and built.preprocessing == Preprocessing()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(built.model(x), source.half().float()(x), atol=1e-3, rtol=1e-3)
    with pytest.raises(UserError, match=r"do not match regnet_x_400mf \(missing"):
        load_spec_model("regnet_x_400mf", f"file:{path}")


def test_torchvision_weights_come_from_the_hub_cache_with_their_preprocessing(tmp_path: Path) -> None:
    old_dir = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        with pytest.raises(UserError, match=r"not in the torch hub cache .*get_model\('efficientnet_b0'"):
            load_spec_model("efficientnet_b0", "torchvision")
        with pytest.raises(UserError, match="has no 'IMAGENET9K' weights"):
            load_spec_model("efficientnet_b0", "torchvision:IMAGENET9K")
        (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
        url = get_adapter("efficientnet_b0").torchvision_weights(parse_model_spec("efficientnet_b0"), "").url
        torch.save(build_model("efficientnet_b0").state_dict(), tmp_path / "hub" / "checkpoints" / url.split("/")[-1])
        built = load_spec_model("efficientnet_b0", "torchvision")
    finally:
        torch.hub.set_dir(old_dir)
    assert built.num_classes == 1000
    assert (built.preprocessing.crop_fraction, built.preprocessing.interpolation) == (0.875, "bicubic")


def _write_user_module(tmp_path: Path) -> None:
    (tmp_path / f"{USER_MODULE}.py").write_text(
        "import torch.nn as nn\n"
        "def make(num_classes=4):\n"
        "    return nn.Sequential(nn.Conv2d(1, 8, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1),\n"
        "                         nn.Flatten(), nn.Linear(8, num_classes))\n"
        "make.preprocessing = {'mean': [0.5], 'std': [0.25], 'channels': 1, 'resize': 'stretch'}\n"
        "def conv_only():\n"
        "    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())\n"
        "conv_only.preprocessing = {'mean': [0.5], 'std': [0.5], 'channels': 1}\n"
        "def not_a_model():\n"
        "    return 3\n"
    )


def test_python_factory_builds_declares_preprocessing_and_loads(tmp_path: Path, monkeypatch) -> None:
    _write_user_module(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, USER_MODULE, raising=False)
    spec = parse_model_spec(f"python:{USER_MODULE}:make")
    assert isinstance(spec, ModelSpec) and spec.get("factory") == f"{USER_MODULE}:make"
    model = build_model(spec, num_classes=3)
    assert model[-1].out_features == 3
    prep = get_adapter("python").preprocessing(spec)
    assert (prep.mean, prep.std, prep.channels, prep.resize) == ((0.5,), (0.25,), 1, "stretch")
    path = tmp_path / "user.pt"
    torch.save(build_model(spec, num_classes=6).state_dict(), path)
    built = load_spec_model(spec, f"file:{path}")
    assert built.num_classes == 6 and built.preprocessing == prep and isinstance(built.model, nn.Sequential)
    torch.save(build_model(f"python:{USER_MODULE}:conv_only").state_dict(), path)
    assert load_spec_model(f"python:{USER_MODULE}:conv_only", f"file:{path}").num_classes == 3  # no linear layer
    with pytest.raises(UserError, match="returned a int, not a torch.nn.Module"):
        build_model(f"python:{USER_MODULE}:not_a_model")
    with pytest.raises(UserError, match="has no callable 'missing'"):
        build_model(f"python:{USER_MODULE}:missing")
    with pytest.raises(UserError, match="cannot import no_such_module_xyz .*PYTHONPATH"):
        build_model("python:no_such_module_xyz:make")
