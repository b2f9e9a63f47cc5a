"""Issue 14's acceptance on small data: a model the tests define (``python:`` factory, a state dict
file, its own normalisation, one channel) on an image folder the tests write runs search -> export
-> verify; a ResNet split between residual stages runs export, verify, serve and infer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
import torchvision
import yaml
from conftest import TINY_K, TINY_MODEL, make_fake_fashion, make_imagefolder, write_tiny_space
from test_user_model import SPEC, make_user_model

from optimizer.cli import main
from optimizer.config import load_search_space
from optimizer.deploy import MANIFEST, open_bundle
from optimizer.models import build_model
from optimizer.search import build_evaluator

PI4 = Path(__file__).resolve().parents[1] / "profiles" / "pi4.yaml"
PCA = {"geometry": ["channel"], "components": [2], "bits": [4], "coders": ["ans"]}


def _space(root: Path, dataset: str, models: list[dict[str, Any]]) -> Path:
    doc = {
        "name": "any",
        "description": "a user's model on small data",
        "dataset": dataset,
        "models": models,
        "pca": PCA,
        "image": {"formats": ["png"], "qualities": [50]},
        "samples": {"calib": 12, "val": 12},
    }
    path = root / "space.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _search(space: Path, root: Path, *extra: str) -> None:
    args = ["search", "--device", str(PI4), "--search-space", str(space), "--reports-dir", str(root / "reports")]
    assert main([*args, "--study", "t", "--sampler", "random", "--budget-kb", "50", *extra, "--format", "json"]) == 0


def _trial(root: Path, **params: Any) -> int:
    study = optuna.load_study(study_name="t", storage=f"sqlite:///{root / 'reports' / 't' / 'study.db'}")
    for t in study.trials:
        if t.state == optuna.trial.TrialState.COMPLETE and all(t.params.get(k) == v for k, v in params.items()):
            return t.number
    raise LookupError(params)


def _export(root: Path, trial: int, name: str) -> Path:
    out = root / "deploy" / name
    assert (
        main(["export", str(root / "reports" / "t"), "--trial", str(trial), "--out", str(out), "--format", "json"]) == 0
    )
    return out


def test_a_factory_model_with_its_own_normalisation_runs_search_export_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = make_imagefolder(tmp_path / "folder", classes=3, per_class=40)
    torch.manual_seed(0)
    torch.save(make_user_model(num_classes=3).state_dict(), tmp_path / "user.pt")
    model = {"spec": SPEC, "weights": f"file:{tmp_path / 'user.pt'}", "input_sizes": [32], "cuts": "all"}
    space = _space(tmp_path, f"imagefolder:{folder}", [model])
    _search(space, tmp_path, "--trials", "3")
    text = capsys.readouterr().out
    doc, end = json.JSONDecoder().raw_decode(text)
    assert not text[end:].strip(), text[end : end + 500]
    assert doc["pareto"] and all(e["params"]["model"] == SPEC for e in doc["pareto"])
    evaluator = build_evaluator(load_search_space(space))
    add = evaluator.space_model(SPEC).names.index("add")  # after the residual block
    optuna.load_study(study_name="t", storage=f"sqlite:///{tmp_path / 'reports' / 't' / 'study.db'}").enqueue_trial(
        {
            "model": SPEC,
            "input_size": 32,
            "k": add,
            "codec": "pca",
            "geometry": "channel",
            "components": 2,
            "bits": 4,
            "coder": "ans",
        }
    )
    _search(space, tmp_path, "--trials", "1")
    capsys.readouterr()
    out = _export(tmp_path, _trial(tmp_path, k=add, codec="pca"), "user")
    capsys.readouterr()
    manifest = json.loads((out / MANIFEST).read_text())
    prep = manifest["model"]["preprocessing"]
    assert (prep["mean"], prep["std"], prep["channels"], prep["resize"]) == ([0.286], [0.353], 1, "stretch")
    assert manifest["model"]["spec"] == SPEC and manifest["model"]["split"] == "add"
    assert manifest["dataset"]["image_mode"] == "RGB"
    assert main(["verify", str(out), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"], report


@pytest.fixture(scope="module")
def resnet_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A study over resnet18 (random weights of 10 classes) between its residual stages."""
    root = tmp_path_factory.mktemp("resnet")
    fashion = make_fake_fashion(root / "fmnist", n_train=20, n_test=120)
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), root / "r18.pt")
    model = {
        "spec": "resnet18",
        "weights": f"file:{root / 'r18.pt'}",
        "input_sizes": [32],
        "cuts": ["layer2", "logits"],
    }
    space = _space(root, f"fashion-mnist:{fashion}", [model])
    _search(space, root, "--trials", "4")
    return root


def test_a_resnet_split_between_residual_stages_exports_verifies_serves_and_infers(
    resnet_study: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_bottleneck_search import _serve_and_infer

    capsys.readouterr()
    k = 6  # layer2's output: resnet18's split points are the stem, then one per residual block
    out = _export(resnet_study, _trial(resnet_study, model="resnet18", k=k), "r18")
    capsys.readouterr()
    bundle = open_bundle(out)
    assert (bundle.k, bundle.manifest["model"]["split"]) == (k, "layer2_1_relu_1")
    assert bundle.manifest["model"]["family"] == "resnet18" and bundle.file("head") and bundle.file("tail")
    assert main(["verify", str(out), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"]
    evaluator = build_evaluator(load_search_space(resnet_study / "space.yaml"))
    _serve_and_infer(bundle, evaluator, out, capsys)


def test_a_space_of_two_families_searches_both_and_exports_from_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two families have different split points (and here different input sizes): each model's
    ``input_size`` and ``k`` are trial parameters of their own (Optuna refuses a categorical whose
    choices change), and pareto.json, the report and export read them back as plain ``input_size``/``k``."""
    fashion = make_fake_fashion(tmp_path / "fmnist", n_train=20, n_test=120)
    torch.manual_seed(0)
    torch.save(build_model("mobilenetv2:alpha=0.35", 10).state_dict(), tmp_path / "m.pt")
    torch.save(build_model("resnet18:width=0.25", 10).state_dict(), tmp_path / "r.pt")
    models = [
        {
            "spec": "mobilenetv2:alpha=0.35",
            "weights": f"file:{tmp_path / 'm.pt'}",
            "input_sizes": [32],
            "cuts": "blocks",
        },
        {
            "spec": "resnet18:width=0.25",
            "weights": f"file:{tmp_path / 'r.pt'}",
            "input_sizes": [32, 40],
            "cuts": "blocks",
        },
    ]
    space = _space(tmp_path, f"fashion-mnist:{fashion}", models)
    _search(space, tmp_path, "--trials", "6")
    doc = json.loads(capsys.readouterr().out)
    study = optuna.load_study(study_name="t", storage=f"sqlite:///{tmp_path / 'reports' / 't' / 'study.db'}")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert {t.params["model"] for t in done} == {"mobilenetv2:alpha=0.35", "resnet18:width=0.25"}
    assert all("k" not in t.params and f"k_{t.params['model']}" in t.params for t in done)
    entries = [doc["best"], *doc["pareto"]] if doc["best"] else doc["pareto"]
    assert entries and all({"model", "input_size", "k"} <= set(e["params"]) for e in entries)
    resnet = next(
        t for t in done if t.params["model"].startswith("resnet18") and t.user_attrs["codec_params"]["kind"] != "image"
    )
    out = _export(tmp_path, resnet.number, "r")
    manifest = json.loads((out / MANIFEST).read_text())
    assert (
        manifest["model"]["spec"] == "resnet18:width=0.25" and manifest["k"] == resnet.params["k_resnet18:width=0.25"]
    )
    assert main(["report", str(tmp_path / "reports" / "t"), "--format", "json"]) == 0


def test_a_codec_added_by_one_module_runs_search_export_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``uniform`` (optimizer/codecs/_uniform.py plus its registry line) through the whole path: the
    space offers it with its own section, the sampler's ``codec`` parameter picks it, export folds its
    graphs into the halves, verify runs the bundle on the test split."""
    fashion = make_fake_fashion(tmp_path / "fmnist", n_train=20, n_test=120)
    space = write_tiny_space(tmp_path, fashion, uniform={"bits": [8]}, samples={"calib": 12, "val": 12})
    _search(space, tmp_path, "--trials", "1")
    study = optuna.load_study(study_name="t", storage=f"sqlite:///{tmp_path / 'reports' / 't' / 'study.db'}")
    where = {"model": TINY_MODEL, "input_size": 32, "k": TINY_K["pca"]}
    study.enqueue_trial({**where, "codec": "uniform", "uniform_bits": 8})
    _search(space, tmp_path, "--trials", "1")
    capsys.readouterr()
    trial = _trial(tmp_path, codec="uniform")
    done = optuna.load_study(study_name="t", storage=f"sqlite:///{tmp_path / 'reports' / 't' / 'study.db'}")
    attrs = done.trials[trial].user_attrs
    assert attrs["codec_params"] == {"kind": "uniform", "bits": 8}
    assert attrs["metrics"]["payload_bytes"] > 0 and attrs["metrics"]["device_ms"] > 0
    out = _export(tmp_path, trial, "uniform")
    capsys.readouterr()
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["codec"]["kind"] == "uniform" and manifest["head"]["output"] == "symbols"
    assert main(["verify", str(out), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"]
