"""The codec contract, for every registered codec (parametrized over optimizer.codecs.CODECS): round
trips through the payload, batch and single-sample transforms agreeing, the torch graphs (exported
to ONNX, as bundles run them) computing what the numpy transforms compute, state files that round
trip and refuse tampering, the search-space options, and fuzzing where any exception other than
CodecError fails. A codec registered without a case here fails the first test."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import optuna
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer.codecs import (
    CODECS,
    INPUT,
    OUTPUT,
    Codec,
    CodecError,
    Site,
    load_codec,
    make_codec,
    save_codec,
)
from optimizer.codecs._wire import pack, unpack
from optimizer.config import Reader
from optimizer.deploy._graphs import export_onnx
from optimizer.models import BottleneckSpec, LearnedBottleneck

RNG = np.random.default_rng(0)
SPATIAL = (6, 5, 5)
VECTOR = (12,)


def _activations(shape: tuple[int, ...], n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.2, 3.0, size=(1, shape[0], *(1,) * (len(shape) - 1)))
    return (rng.normal(size=(n, *shape)) * scale).astype(np.float16).astype(np.float32)


def _images(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    grey = [rng.integers(0, 255, (28, 28), dtype=np.uint8) for _ in range(n // 2)]
    return grey + [rng.integers(0, 255, (20, 30, 3), dtype=np.uint8) for _ in range(n - n // 2)]


def _bottleneck_file(folder: Path, entropy: str) -> str:
    """A tiny trained-shaped bottleneck (random weights) with its card, as `bottleneck train` writes."""
    torch.manual_seed(0)
    spec = BottleneckSpec(SPATIAL[0], SPATIAL[1], SPATIAL[2], 8, 3, 2, entropy=entropy, side=2)
    net = LearnedBottleneck(spec).eval()
    path = folder / f"bn_{entropy}.pt"
    torch.save(net.state_dict(), path)
    card = {
        "name": path.stem,
        "model": "mobilenetv2:alpha=0.35",
        "input_size": 32,
        "split": "features.3",
        "beta": 0.01,
        "spec": spec.to_json(),
        "entropy": entropy,
        "encoder_macs": 1000,
        "decoder_macs": 2000,
        "weights_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    path.with_suffix(".json").write_text(json.dumps(card))
    return str(path)


@pytest.fixture(scope="module")
def bottleneck_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("bottlenecks")
    return {entropy: _bottleneck_file(folder, entropy) for entropy in ("factorized", "hyperprior")}


Case = tuple[dict, tuple[int, ...], Callable[[int], object]]
# Per codec kind: its configurations (params, shape at its place, samples maker).
CASES: dict[str, list[Case]] = {
    "pca": [
        (
            {"geometry": "channel", "components": 3, "bits": 4, "coder": "ans"},
            SPATIAL,
            lambda n: _activations(SPATIAL, n),
        ),
        ({"geometry": "tile", "tile": 2, "components": 5, "bits": 3, "coder": "huffman"}, SPATIAL, None),
        ({"geometry": "channel", "components": 4, "bits": 4, "coder": "ctx"}, SPATIAL, None),
        ({"geometry": "channel", "components": None, "bits": 5, "coder": "raw"}, SPATIAL, None),
        (
            {"geometry": "channel", "components": 6, "bits": 6, "coder": "ans"},
            VECTOR,
            lambda n: _activations(VECTOR, n),
        ),
    ],
    "float16": [({}, SPATIAL, None), ({}, VECTOR, lambda n: _activations(VECTOR, n))],
    "uniform": [({"bits": 8}, SPATIAL, None), ({"bits": 3}, VECTOR, lambda n: _activations(VECTOR, n))],
    "image": [({"format": f, "quality": 60}, (), _images) for f in ("jpeg", "webp", "png")],
    "class-id": [({}, (10,), lambda n: _activations((10,), n))],
    "bottleneck": [({"entropy": "factorized"}, SPATIAL, None), ({"entropy": "hyperprior"}, SPATIAL, None)],
}
IDS = [f"{kind}-{i}" for kind, cases in CASES.items() for i in range(len(cases))]
PARAMS = [(kind, i) for kind, cases in CASES.items() for i in range(len(cases))]


def _build(kind: str, i: int, files: dict[str, str]) -> tuple[Codec, list[np.ndarray] | np.ndarray]:
    params, shape, make = CASES[kind][i]
    make = make or (lambda n: _activations(shape, n))
    if kind == "bottleneck":  # the test's own fixture: a trained bottleneck is a file
        params = {"file": files[params["entropy"]], "beta": 0.01}
    codec = make_codec({"kind": kind, **params}, shape)
    calib = make(40) if codec.place != INPUT else None
    return codec.fit(calib), make(6)  # type: ignore[arg-type]


@pytest.fixture
def built(request: pytest.FixtureRequest, bottleneck_files: dict[str, str]) -> tuple[Codec, object]:
    kind, i = request.param
    return _build(kind, i, bottleneck_files)


def test_every_registered_codec_has_cases_here() -> None:
    assert set(CASES) == set(CODECS), "add the new codec's configurations to CASES"
    assert all(CODECS[kind].place in (INPUT, "activation", OUTPUT) for kind in CODECS)


@pytest.mark.parametrize("built", PARAMS, ids=IDS, indirect=True)
def test_payloads_round_trip_through_the_transforms(built: tuple[Codec, list[np.ndarray]]) -> None:
    codec, samples = built
    symbols = codec.to_symbols(samples)
    for x, s in zip(samples, symbols, strict=True):
        np.testing.assert_array_equal(codec.symbols(x), s)  # batch and single sample agree
        payload = codec.encode(x, tag=5)
        body = codec.encode_symbols(s)
        assert payload[-len(body) :] == body and len(payload) <= len(body) + 4  # header of at most 4 bytes
        assert len(body) <= codec.max_body_bytes()
        back = codec.decode_symbols(codec.unwrap(payload))
        np.testing.assert_array_equal(codec.decode(payload), codec.values(back))
        if codec.exact:  # the entropy model gives the symbols back exactly
            np.testing.assert_array_equal(back, s)
        else:  # a lossy image format: close, and grey comes back grey or as three equal channels (WebP)
            grey = back[..., 0] if back.ndim == np.asarray(s).ndim + 1 else back
            assert grey.shape == np.asarray(s).shape and np.abs(grey.astype(float) - s).mean() < 64
    values = codec.from_symbols(symbols)
    for v, s in zip(values, symbols, strict=True):
        np.testing.assert_allclose(v, codec.values(s), rtol=1e-6, atol=1e-6)
    assert codec.device_work(np.asarray(samples[0]).shape).calls == 1  # every payload pays one codec call


@pytest.mark.parametrize("built", PARAMS, ids=IDS, indirect=True)
def test_graphs_exported_to_onnx_compute_the_numpy_transforms(
    built: tuple[Codec, list[np.ndarray]], tmp_path: Path
) -> None:
    codec, samples = built
    device, server = codec.device_graph(), codec.server_graph()
    if codec.place == INPUT:
        assert device is None and server is None  # the device codes the image itself; preprocessing is the model's
        return
    assert device is not None
    x = np.stack(samples)
    export_onnx(device, torch.from_numpy(x[:1]), tmp_path / "device.onnx", "a", "s")
    symbols = ort.InferenceSession(str(tmp_path / "device.onnx")).run(None, {"a": x})[0]
    expected = np.stack(codec.to_symbols(samples))
    np.testing.assert_array_equal(symbols.reshape(expected.shape), expected)
    assert symbols.shape[1:] == codec.symbols_example().shape and symbols.dtype == codec.symbols_example().dtype
    if codec.place == OUTPUT:
        assert server is None  # the class id is the answer
        return
    assert server is not None
    example = torch.from_numpy(codec.symbols_example()[None])
    export_onnx(server, example, tmp_path / "server.onnx", "s", "a")
    values = ort.InferenceSession(str(tmp_path / "server.onnx")).run(None, {"s": symbols})[0]
    np.testing.assert_allclose(values, codec.from_symbols(list(expected)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("built", PARAMS, ids=IDS, indirect=True)
def test_state_round_trips_and_refuses_tampering(built: tuple[Codec, list[np.ndarray]], tmp_path: Path) -> None:
    codec, samples = built
    payload = codec.encode(samples[0])
    save_codec(codec, tmp_path / "c.npz")
    again = load_codec(tmp_path / "c.npz")
    assert again.state_hash() == codec.state_hash() and type(again) is type(codec)
    np.testing.assert_array_equal(
        again.decode_symbols(again.unwrap(payload)), codec.decode_symbols(codec.unwrap(payload))
    )
    arrays = codec.arrays()
    if not arrays:
        return  # nothing fitted: nothing to tamper with
    name = sorted(arrays)[0]
    with np.load(tmp_path / "c.npz", allow_pickle=False) as npz:
        stored = {key: npz[key] for key in npz.files}
    changed = stored[f"a_{name}"].copy()
    changed.flat[0] = changed.flat[0] + 1
    np.savez(tmp_path / "t.npz", **{**stored, f"a_{name}": changed})
    with pytest.raises(CodecError):
        load_codec(tmp_path / "t.npz")


@pytest.mark.parametrize("kind", sorted(CODECS))
def test_options_read_their_section_and_every_grid_entry_builds_a_codec(kind: str, tmp_path: Path) -> None:
    options = CODECS[kind].options
    offered, choices = options.offered(None, None)
    assert offered == (options.section is None)  # a codec with a section is offered only when the space has it
    sections = {"pca": {"geometry": ["channel"], "components": [2], "bits": [4], "coders": ["ans"]}}
    sections |= {"image": {"formats": ["png", "jpeg"], "qualities": [50]}, "uniform": {"bits": [4, 8]}}
    if options.section in sections:
        reader = Reader(sections[options.section], tmp_path / "space.yaml", options.section)
        offered, choices = options.offered(sections[options.section], reader)
        assert offered
    if options.placed:
        return  # trained instances: tests/test_bottleneck_search.py
    place = CODECS[kind].place
    site = Site("m", 32, 0 if place == INPUT else 3, "x", place)
    grid = options.grid(choices, site)
    assert grid
    for trial_params in grid:
        params = options.suggest(optuna.trial.FixedTrial(trial_params), choices, site)
        shape = {INPUT: (), OUTPUT: (10,)}.get(place, SPATIAL)
        assert make_codec({"kind": kind, **params}, shape).kind == kind
        assert options.from_trial(trial_params).items() <= params.items()


def _mutate(payload: bytes, data: st.DataObject) -> bytes:
    how = data.draw(st.sampled_from(["truncate", "flip", "splice", "random", "header", "body", "body"]))
    b = bytearray(payload)
    if how == "body":  # a valid header around another body of the same length: what reaches the parser
        body = unpack(payload, 1 << 30)[1]
        return pack(0, data.draw(st.binary(min_size=len(body), max_size=len(body))))
    if how == "truncate":
        return bytes(b[: data.draw(st.integers(0, len(b) - 1))])
    if how == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            b[data.draw(st.integers(0, len(b) - 1))] ^= 1 << data.draw(st.integers(0, 7))
        return bytes(b)
    if how == "splice":
        at = data.draw(st.integers(0, len(b)))
        return bytes(b[:at]) + data.draw(st.binary(max_size=64)) + bytes(b[at:])
    if how == "header":  # keep the tag byte; lie about the length
        return bytes(b[:1]) + data.draw(st.binary(max_size=6)) + bytes(b[2:])
    return data.draw(st.binary(max_size=2 * len(b)))


_FUZZ: dict[tuple[str, int], tuple[Codec, bytes]] = {}


@pytest.mark.parametrize("case", PARAMS, ids=IDS)
@given(data=st.data())
@settings(max_examples=500, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_garbage_decodes_to_a_sample_or_raises_codec_error_and_nothing_else(
    case: tuple[str, int], bottleneck_files: dict[str, str], data: st.DataObject
) -> None:
    """No exception but CodecError may leave a decoder: a parser bug shows up here as a failure."""
    if case not in _FUZZ:
        codec, samples = _build(*case, bottleneck_files)
        _FUZZ[case] = (codec, codec.encode(samples[0]))
    codec, payload = _FUZZ[case]
    try:
        out = codec.decode(_mutate(payload, data))
    except CodecError:
        return
    assert np.isfinite(np.asarray(out, dtype=np.float64)).all()
    if codec.shape:
        assert out.shape == codec.shape
