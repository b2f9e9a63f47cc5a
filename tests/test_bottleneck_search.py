"""A trained bottleneck in a search space: parsed, suggested, scored as a reference, on the Pareto
front where it is non-dominated, exported as a bundle that reproduces the study, verified."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import yaml
from conftest import TINY_K, TINY_MODEL, make_fake_fashion, write_tiny_space

from optimizer.cli import main
from optimizer.codecs import CodecChoices, Site, variant_param
from optimizer.config import load_search_space
from optimizer.data import FashionMNIST
from optimizer.deploy import open_bundle
from optimizer.deploy._verify import run_split
from optimizer.errors import UserError
from optimizer.models import BottleneckTrainConfig, train_bottleneck
from optimizer.search import SearchChoices, build_evaluator, reference_points, suggest_config
from optimizer.search._objective import enumerate_params

ROOT = Path(__file__).resolve().parents[1]
PI4 = ROOT / "profiles" / "pi4.yaml"
K = TINY_K["pca"]  # features.4, the older block numbering's k = 5


@pytest.fixture(scope="module", params=["factorized", "hyperprior"])
def study(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(space, report folder, bottleneck weights): a tiny study whose space lists one bottleneck,
    with either entropy model (the hyperprior goes through the same search, export and serving)."""
    root = tmp_path_factory.mktemp("bn-search")
    fashion = make_fake_fashion(root / "fmnist", n_train=100, n_test=400)
    write_tiny_space(root, fashion)
    cfg = BottleneckTrainConfig(
        TINY_MODEL, 32, "features.4", 0.01, weights=f"file:{root}/w_0.35.pt", epochs=2, batch_size=16,
        entropy=request.param,
    )  # fmt: skip
    bn = train_bottleneck(cfg, FashionMNIST(str(fashion)), root / "bottlenecks")
    space = write_tiny_space(
        root,
        fashion,
        pca={"geometry": ["channel"], "components": [4], "bits": [4], "coders": ["ans"]},
        image={"formats": ["png"], "qualities": [50]},
        samples={"calib": 40, "val": 30},
        bottleneck={"files": [f"bottlenecks/{bn.path.name}"]},  # relative to the space file
    )
    args = ["search", "--device", str(PI4), "--search-space", str(space), "--reports-dir", str(root / "reports")]
    assert main([*args, "--study", "t", "--sampler", "random", "--budget-kb", "5", "--trials", "1"]) == 0
    return space, root / "reports" / "t", bn.path


def test_the_space_lists_suggests_and_enumerates_the_bottleneck(study: tuple[Path, Path, Path]) -> None:
    space = load_search_space(study[0])
    (choice,) = next(o.choices for o in CodecChoices.of(space).offers if o.codec.options.section == "bottleneck")
    assert (choice.model, choice.input_size, choice.split, choice.file) == (
        TINY_MODEL,
        32,
        "features_4_conv_3",
        str(study[2]),
    )
    choices = SearchChoices.of(space)
    key = variant_param("bottleneck", Site(TINY_MODEL, 32, K, "features_4_conv_3", "activation"))
    assert key == f"bottleneck_{TINY_MODEL}_32_k{K}"  # the name studies have always used
    place = {"model": TINY_MODEL, "input_size": 32, "k": K}
    config = suggest_config(optuna.trial.FixedTrial({**place, key: choice.name}), choices)
    assert config.codec_params["kind"] == "bottleneck" and config.codec_params["file"] == choice.file
    grid = enumerate_params(choices)
    assert sum(p.get(key) == choice.name for p in grid) == 1
    assert all(p.get(key) == "none" for p in grid if p["k"] == K and p.get(key) != choice.name)
    assert {key: choice.name, **place} in reference_points(choices)


def test_a_missing_bottleneck_file_is_a_clear_error(study: tuple[Path, Path, Path], tmp_path: Path) -> None:
    doc = yaml.safe_load(study[0].read_text())
    doc["bottleneck"] = {"files": ["nowhere.pt"]}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(UserError, match="bottleneck.files: 'nowhere.pt' is not a trained bottleneck"):
        CodecChoices.of(load_search_space(bad))  # the bottleneck codec reads its own section


def test_the_study_scores_the_bottleneck_and_keeps_it_where_non_dominated(study: tuple[Path, Path, Path]) -> None:
    pareto = json.loads((study[1] / "pareto.json").read_text())
    db = f"sqlite:///{study[1] / 'study.db'}"
    trials = optuna.load_study(study_name="t", storage=db).get_trials()
    scored = [t for t in trials if t.user_attrs.get("codec_params", {}).get("kind") == "bottleneck"]
    assert len(scored) == 1 and scored[0].state == optuna.trial.TrialState.COMPLETE
    bn = scored[0]
    dominated = any(
        t.values[0] >= bn.values[0]
        and t.values[1] <= bn.values[1]
        and t.values[2] <= bn.values[2]
        and t.values != bn.values
        for t in trials
        if t.values
    )
    on_front = any(e["trial"] == bn.number for e in pareto["pareto"])
    assert on_front == (not dominated)


def test_export_and_verify_reproduce_the_study(
    study: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    space, report, _ = study
    trials = optuna.load_study(study_name="t", storage=f"sqlite:///{report / 'study.db'}").get_trials()
    number = next(t.number for t in trials if t.user_attrs.get("codec_params", {}).get("kind") == "bottleneck")
    out = report.parent.parent / "deploy" / "bn"
    args = ["export", str(report), "--trial", str(number), "--out", str(out), "--search-space", str(space)]
    assert main([*args, "--format", "json"]) == 0
    capsys.readouterr()
    bundle = open_bundle(out)
    assert bundle.manifest["codec"]["kind"] == "bottleneck"
    correct, sizes = run_split(bundle)
    evaluator = build_evaluator(load_search_space(space))
    codec = {k: v for k, v in bundle.manifest["codec"].items() if k not in ("shape", "state_file", "state_hash")}
    from optimizer.search import Config

    evaluation = evaluator.evaluate(Config.make(TINY_MODEL, 32, K, codec), "test")
    assert (correct == evaluation.correct).mean() >= 0.99  # ONNX Runtime vs the engine: at most a rounding tie
    np.testing.assert_array_equal(sizes, evaluation.payload_bytes)
    assert main(["verify", str(out), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"]
    _serve_and_infer(bundle, evaluator, out, capsys)


def _serve_and_infer(bundle: Any, evaluator: Any, out: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The server answers the device half's payloads (and refuses corrupt ones); infer --local runs."""
    from fastapi.testclient import TestClient
    from PIL import Image

    from optimizer.deploy import DeviceHalf
    from optimizer.deploy._server import create_app
    from optimizer.protocol import request_headers

    native = evaluator.dataset.native(int(evaluator.indices("test")[0]))
    payload = DeviceHalf(bundle).encode(native).payload
    client = TestClient(create_app(bundle))
    octet = request_headers(bundle.identity)
    good = client.post("/v1/infer", content=payload, headers=octet)
    assert good.status_code == 200 and good.json()["label"] == bundle.classes[good.json()["class_index"]]
    assert client.post("/v1/infer", content=payload[:-1], headers=octet).status_code == 400
    Image.fromarray(native).save(out.parent / "x.png")
    assert main(["infer", str(out), str(out.parent / "x.png"), "--local", "--format", "json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)["results"]
    assert result["payload_bytes"] == len(payload) and result["class_index"] == good.json()["class_index"]


def test_the_compression_figure_shows_the_bottleneck_beside_pca_and_images(study: tuple[Path, Path, Path]) -> None:
    from optimizer.report import compression_info, draw_compression, load_results

    info = compression_info(load_results(study[1]), TINY_MODEL, 32)
    assert [p.k for p in info.bottlenecks] == [K] and len(info.bottlenecks_within) == 1
    assert "bottleneck" in info.bottlenecks[0].label and "beta=0.01" in info.bottlenecks[0].label
    names = [trace.name for trace in draw_compression([info]).data]
    assert (
        "learned bottleneck (filled: within 1 point)" in names
        and "image codecs at k=0 (filled: within 1 point)" in names
    )
