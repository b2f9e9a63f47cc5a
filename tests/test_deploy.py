"""Deploy: export, the folded ONNX graphs, the server's status codes, tampering, infer --local, verify."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import optuna
import pytest
import torch
from conftest import TINY_K
from deploy_fixtures import TinyStudy, engine_predictions
from fastapi.testclient import TestClient
from PIL import Image

from optimizer.cli import main
from optimizer.codecs import FeatureCodec
from optimizer.codecs._graphs import HalfCast
from optimizer.deploy import MANIFEST, DeviceHalf, ServerHalf, open_bundle
from optimizer.deploy._bundle import sha256_of
from optimizer.deploy._graphs import export_onnx
from optimizer.deploy._server import create_app
from optimizer.deploy._verify import run_split
from optimizer.protocol import BUNDLE_HEADER, CONTENT_TYPE, request_headers
from optimizer.search import Config


def _config(manifest: dict) -> Config:
    codec = {k: v for k, v in manifest["codec"].items() if k not in ("shape", "state_file", "state_hash")}
    return Config.make(manifest["model"]["spec"], manifest["model"]["input_size"], manifest["k"], codec)


def test_export_writes_the_manifest_contract(pca_bundle: Path, tiny: TinyStudy) -> None:
    manifest = json.loads((pca_bundle / MANIFEST).read_text())
    for key in ("model", "k", "codec", "expected", "files", "versions", "dataset"):
        assert key in manifest, key
    for key in ("test_accuracy", "payload_bytes_mean", "device_latency_ms"):
        assert isinstance(manifest["expected"][key], float), key
    assert set(manifest["files"]) == {"head.onnx", "tail.onnx", "codec.npz"}
    assert manifest["k"] == TINY_K["pca"] and manifest["codec"]["kind"] == "pca"
    model = manifest["model"]
    assert (model["spec"], model["family"], model["split"]) == (
        "mobilenetv2:alpha=0.35",
        "mobilenetv2",
        "features_4_conv_3",
    )
    assert model["preprocessing"]["mean"] == [0.485, 0.456, 0.406] and model["preprocessing"]["channels"] == 3
    assert manifest["dataset"]["image_mode"] == "L" and manifest["splits"] == 36
    assert manifest["study"]["trial"] == tiny.trial_of(k=TINY_K["pca"], codec="pca")
    with np.load(pca_bundle / "codec.npz", allow_pickle=False) as npz:  # plain arrays only: no pickle
        assert all(npz[name].dtype != object for name in npz.files)


def _activations_codec(geometry: str, components: int | None, coder: str) -> tuple[FeatureCodec, np.ndarray]:
    rng = np.random.default_rng(0)
    calib = (rng.normal(size=(30, 6, 5, 5)) * rng.uniform(0.1, 3, size=(1, 6, 1, 1))).astype(np.float32)
    params = {"geometry": geometry, "tile": 2, "components": components, "bits": 3, "coder": coder}
    return FeatureCodec(params, (6, 5, 5)).fit(calib), calib


@pytest.mark.parametrize(
    ("geometry", "components", "coder"),
    [("channel", 3, "ans"), ("tile", 5, "huffman"), ("channel", None, "raw"), ("tile", None, "ans")],
)
def test_folded_projection_and_quantization_equal_the_codec_exactly(
    geometry: str, components: int | None, coder: str, tmp_path: Path
) -> None:
    codec, acts = _activations_codec(geometry, components, coder)
    acts = acts.astype(np.float16).astype(np.float32)  # what the head hands the projection
    export_onnx(codec.device_graph(), torch.zeros(1, 6, 5, 5), tmp_path / "h.onnx", "a", "s")
    symbols = ort.InferenceSession(str(tmp_path / "h.onnx")).run(None, {"a": acts})[0]
    for a, s in zip(acts, symbols, strict=True):
        np.testing.assert_array_equal(s, codec.symbols(a))
        assert codec.wrap(codec.encode_symbols(s)) == codec.encode(a)  # byte-identical payloads
    tail = codec.server_graph()
    export_onnx(tail, torch.zeros(1, *symbols.shape[1:], dtype=torch.int32), tmp_path / "t.onnx", "s", "a")
    decoded = ort.InferenceSession(str(tmp_path / "t.onnx")).run(None, {"s": symbols})[0]
    expected = np.stack([codec.decode(codec.encode(a)) for a in acts])
    np.testing.assert_allclose(decoded, expected, rtol=1e-5, atol=1e-5)


def test_onnx_head_symbols_equal_the_pytorch_codec_symbols(pca_bundle: Path, tiny: TinyStudy) -> None:
    bundle = open_bundle(pca_bundle)
    evaluator = tiny.evaluator()
    config = _config(bundle.manifest)
    idx = evaluator.indices("test")[:50]
    onnx_symbols = DeviceHalf(bundle).head([evaluator.dataset.native(int(i)) for i in idx])
    spec = bundle.manifest["model"]["spec"]
    with torch.no_grad():
        x = evaluator.dataset.batch(idx, 32, evaluator.preprocessing(spec))
        acts = evaluator.graph(spec, 32).head(TINY_K["pca"])(x).numpy()
    codec = evaluator.codec(config)
    torch_symbols = np.stack([codec.symbols(a) for a in acts.astype(np.float16).astype(np.float32)])
    np.testing.assert_array_equal(onnx_symbols, torch_symbols)
    assert bundle.codec.state_hash() == codec.state_hash()  # the exported codec is the study's codec


@pytest.mark.parametrize(
    ("params", "name"),
    [({"k": 0}, "image"), ({"k": TINY_K["float16"]}, "float16"), ({"k": TINY_K["class-id"]}, "class")],
)
def test_every_kind_of_split_reproduces_the_study(tiny: TinyStudy, params: dict, name: str) -> None:
    bundle = open_bundle(tiny.export(tiny.trial_of(**params), name))
    assert (bundle.file("head") is None) == (params["k"] == 0)  # k = 0: the device sends the image itself
    assert (bundle.file("tail") is None) == (params["k"] == TINY_K["class-id"])  # all-local: the class id answers
    correct, sizes = run_split(bundle)
    evaluation = tiny.evaluator().evaluate(_config(bundle.manifest), "test")
    np.testing.assert_array_equal(correct, evaluation.correct)
    np.testing.assert_array_equal(sizes, evaluation.payload_bytes)


@pytest.mark.parametrize(
    ("params", "name"), [({"k": TINY_K["float16"]}, "float16"), ({"k": TINY_K["class-id"]}, "class")]
)
def test_bundles_from_before_the_codec_contract_still_run(
    tiny: TinyStudy, params: dict, name: str, tmp_path: Path
) -> None:
    """Bundles of split-opt 0.3.0 and before: head.onnx ends at the float16 activation (output
    ``activation``) or the logits (``logits``), tail.onnx takes the float32 activation; the halves then
    apply the codec's transforms themselves, and payloads and answers are today's."""
    new = open_bundle(tiny.export(tiny.trial_of(**params), name))
    old = tmp_path / name
    shutil.copytree(new.root, old)
    graph = tiny.evaluator().graph(new.manifest["model"]["spec"], 32)
    manifest = json.loads((old / MANIFEST).read_text())
    k, image = params["k"], torch.zeros(1, 3, 32, 32)
    if name == "float16":
        head = torch.nn.Sequential(graph.head(k), HalfCast())
        export_onnx(head, image, old / "head.onnx", "image", "activation")
        shape = tuple(new.codec.shape)
        export_onnx(graph.tail(k), torch.zeros(1, *shape), old / "tail.onnx", "activation", "logits")
        manifest["head"]["output"] = manifest["tail"]["input"] = "activation"
    else:
        export_onnx(graph.head(k), image, old / "head.onnx", "image", "logits")
        manifest["head"]["output"] = "logits"
    manifest["files"] = {f: sha256_of(old / f) for f in manifest["files"]}
    (old / MANIFEST).write_text(json.dumps(manifest))
    legacy = open_bundle(old)
    natives = [tiny.evaluator().dataset.native(i) for i in range(20)]
    for native in natives:
        payload = DeviceHalf(legacy).encode(native).payload
        assert payload == DeviceHalf(new).encode(native).payload
        assert ServerHalf(legacy).infer(payload).class_index == ServerHalf(new).infer(payload).class_index


def test_server_answers_good_foreign_corrupt_and_oversized_payloads(pca_bundle: Path, tiny: TinyStudy) -> None:
    bundle = open_bundle(pca_bundle)
    native = tiny.evaluator().dataset.native(0)
    payload = DeviceHalf(bundle).encode(native).payload
    foreign_bundle = open_bundle(tiny.export(tiny.trial_of(k=TINY_K["float16"]), "foreign"))
    foreign, foreign_id = DeviceHalf(foreign_bundle).encode(native).payload, foreign_bundle.identity
    client = TestClient(create_app(bundle))
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/v1/manifest").json()["files"] == bundle.manifest["files"]
    octet = request_headers(bundle.identity)
    good = client.post("/v1/infer", content=payload, headers=octet)
    assert good.status_code == 200 and set(good.json()) >= {"class_index", "label", "score"}
    assert good.json()["label"] == bundle.classes[good.json()["class_index"]]
    # the identity of the bundle that made the payload is checked, not the payload: required, and this bundle's
    assert client.post("/v1/infer", content=foreign, headers=request_headers(foreign_id)).status_code == 409
    missing = client.post("/v1/infer", content=payload, headers={"content-type": CONTENT_TYPE})
    assert missing.status_code == 409 and BUNDLE_HEADER in missing.json()["detail"]
    other_tag = bytes([payload[0] | 5]) + payload[1:]
    assert client.post("/v1/infer", content=other_tag, headers=octet).status_code == 409
    version1 = client.post("/v1/infer", content=b"SO\x01\x01" + payload, headers=octet)
    assert version1.status_code == 400 and "format 1" in version1.json()["detail"]
    corrupt = client.post("/v1/infer", content=payload[:-3], headers=octet)
    assert corrupt.status_code == 400 and "body is" in corrupt.json()["detail"]
    assert client.post("/v1/infer", content=b"\0" * (bundle.max_payload_bytes + 1), headers=octet).status_code == 413
    assert client.post("/v1/infer", content=payload, headers={"content-type": "application/json"}).status_code == 415


def _tampered(bundle: Path, tmp_path: Path, name: str) -> Path:
    copy = tmp_path / "tampered"
    shutil.copytree(bundle, copy)
    data = bytearray((copy / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / name).write_bytes(bytes(data))
    return copy


@pytest.mark.parametrize("name", ["tail.onnx", "codec.npz", "head.onnx"])
def test_a_tampered_bundle_does_not_start(
    pca_bundle: Path, tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = _tampered(pca_bundle, tmp_path, name)
    assert main(["serve", str(copy), "--port", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and name in err and "altered" in err
    (copy / name).unlink()
    assert main(["verify", str(copy)]) == 2
    assert "missing" in capsys.readouterr().err


def test_infer_local_prints_predictions_bytes_and_times(
    pca_bundle: Path, tiny: TinyStudy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evaluator = tiny.evaluator()
    idx = evaluator.indices("test")[:5]
    paths = []
    for i in idx:
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(evaluator.dataset.native(int(i))).save(paths[-1])
    assert main(["infer", str(pca_bundle), *map(str, paths), "--local", "--format", "json"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    predictions, sizes = engine_predictions(evaluator, _config(open_bundle(pca_bundle).manifest))
    assert [r["class_index"] for r in results] == predictions[:5].tolist()
    assert [r["payload_bytes"] for r in results] == sizes[:5].tolist()
    assert all(r["head_ms"] > 0 and r["coding_ms"] > 0 for r in results)
    assert main(["infer", str(pca_bundle), str(paths[0]), "--url", "http://127.0.0.1:9"]) == 2
    assert "cannot reach the server" in capsys.readouterr().err


def test_verify_agrees_with_the_manifest_and_catches_a_wrong_one(
    pca_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", str(pca_bundle), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and doc["samples"] == 200 and doc["hashes_ok"]
    copy = tmp_path / "wrong"
    shutil.copytree(pca_bundle, copy)
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["expected"]["test_payload_bytes_mean"] += 20
    (copy / MANIFEST).write_text(json.dumps(manifest))
    assert main(["verify", str(copy)]) == 1
    captured = capsys.readouterr()
    assert "DISAGREES" in captured.out and "does not reproduce its manifest" in captured.err


def test_export_user_errors(
    tiny: TinyStudy, pca_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    space = ["--search-space", str(tiny.space)]
    assert main(["export", str(tmp_path), "--best", "--out", str(tmp_path / "x"), *space]) == 2
    assert "pareto.json does not exist" in capsys.readouterr().err
    assert main(["export", str(tiny.report), "--trial", "999", "--out", str(tmp_path / "x"), *space]) == 2
    assert "trial 999 is not a completed trial" in capsys.readouterr().err
    assert main(["export", str(tiny.report), "--best", "--out", str(pca_bundle), *space]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err


def test_serve_listens_on_loopback_by_default_and_needs_a_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from optimizer.cli import build_parser

    assert build_parser().parse_args(["serve", "deploy/x"]).host == "127.0.0.1"
    assert main(["serve", str(tmp_path)]) == 2
    assert "manifest.json is missing" in capsys.readouterr().err


_NEW_ATTRS = ("metrics", "costs", "constraint_names", "split")
_BLOCK_OF = {
    k: b for b, k in enumerate((0, 1, 3, 6, 7, 10, 11, 12, 15, 16, 17, 18, 21, 22, 23, 26, 27, 28, 31, 32, 35))
}


def _by_alpha(params: dict) -> dict:
    """Trial or entry parameters as split-opt wrote them before model specs: alpha and a block index."""
    place = {"alpha": 0.35, "k": _BLOCK_OF[params["k"]]}
    return {**{k: v for k, v in params.items() if k not in ("model", "k", "split")}, **place}


def _legacy_distributions(t: optuna.trial.FrozenTrial) -> dict:
    dists = {k: v for k, v in t.distributions.items() if k not in ("model", "k")}
    return {**dists, "alpha": optuna.distributions.CategoricalDistribution([0.35]),
            "k": optuna.distributions.IntDistribution(0, 20)}  # fmt: skip


def _legacy_space(tiny: TinyStudy) -> dict:
    """search_space_spec as pareto.json stored it before model specs (family, alphas, a k range)."""
    space = dict(tiny.pareto["search_space_spec"])
    space.pop("models")
    return {**space, "family": "mobilenetv2", "weights": "zoo", "alphas": [0.35], "input_sizes": [32],
            "k_min": 0, "k_max": 20}  # fmt: skip


def test_a_study_from_before_named_metrics_and_model_specs_still_reports_and_exports(
    tiny: TinyStudy, tmp_path: Path
) -> None:
    """pareto.json and study.db as split-opt wrote them before the system model and model specs:
    three positional values, no named metrics, four constraints, models by alpha and splits by block
    index; `report` and `export` still read them, and the export is the same configuration."""
    old = tmp_path / "reports" / "t"
    old.mkdir(parents=True)
    new = optuna.load_study(study_name="t", storage=f"sqlite:///{tiny.report / 'study.db'}")
    legacy = optuna.create_study(
        storage=f"sqlite:///{old / 'study.db'}", study_name="t", directions=["maximize", "minimize", "minimize"]
    )
    for t in new.get_trials(states=[optuna.trial.TrialState.COMPLETE]):
        attrs = {k: v for k, v in t.user_attrs.items() if k not in _NEW_ATTRS}
        attrs["constraints"] = attrs["constraints"][:4]
        m = t.user_attrs["metrics"]
        legacy.add_trial(
            optuna.trial.create_trial(
                params=_by_alpha(t.params),
                distributions=_legacy_distributions(t),
                values=[m["accuracy"], m["payload_bytes"], m["device_ms"]],
                user_attrs=attrs,
            )
        )
    doc = dict(tiny.pareto)
    for key in ("objectives", "constraints", "network", "selection_rule", "bandwidth_sweep", "fps"):
        doc.pop(key, None)
    doc["pareto"] = [
        {**{k: v for k, v in e.items() if k not in ("metrics", "costs")}, "params": _by_alpha(e["params"])}
        for e in doc["pareto"]
    ]
    doc["search_space_spec"] = _legacy_space(tiny)
    (old / "pareto.json").write_text(json.dumps(doc))
    assert main(["report", str(old), "--format", "json"]) == 0
    assert (old / "index.html").stat().st_size > 100_000
    trial = tiny.trial_of(k=TINY_K["pca"], codec="pca")
    out = tmp_path / "deploy" / "legacy"
    assert main(["export", str(old), "--trial", str(trial), "--out", str(out), "--format", "json"]) == 0
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["expected"]["device_latency_ms"] > 0
    assert (manifest["model"]["spec"], manifest["k"]) == ("mobilenetv2:alpha=0.35", TINY_K["pca"])
    fresh = json.loads((tiny.export(trial, "pca") / MANIFEST).read_text())
    assert manifest["codec"]["state_hash"] == fresh["codec"]["state_hash"]  # the very same codec state
