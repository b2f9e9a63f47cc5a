"""The learned bottleneck: prior, codec round trips, training (rate vs beta, resume), safe loading,
and scoring through the evaluation engine and the search. Tiny nets and data only."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_K, TINY_MODEL, write_tiny_space
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.codecs import BottleneckCodec, CodecError, load_codec, make_codec, save_codec
from optimizer.config import ModelChoice
from optimizer.data import FashionMNIST, make_splits
from optimizer.errors import UserError
from optimizer.models import (
    BottleneckSpec,
    BottleneckTrainConfig,
    LearnedBottleneck,
    build_mobilenetv2,
    load_bottleneck,
    prior_tables,
    train_bottleneck,
)
from optimizer.search import Config, Evaluator, resolve_model

SHAPE = (3, 2, 4)


def _codec(seed: int = 0, width: int = 9) -> BottleneckCodec:
    rng = np.random.default_rng(seed)
    pmf = rng.dirichlet(np.ones(width), size=SHAPE[0])
    codec = make_codec({"kind": "bottleneck", "file": f"w{seed}.pt"}, SHAPE)
    assert isinstance(codec, BottleneckCodec)
    return codec.fit_prior(np.array([-4, 0, -8]), pmf)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 8), min_size=24, max_size=24))
def test_latents_round_trip_exactly(values: list[int]) -> None:
    codec = _codec()
    latent = (np.array(values).reshape(SHAPE) + codec.offset[:, None, None]).astype(np.float32)
    payload = codec.encode_latent(latent)
    np.testing.assert_array_equal(codec.decode_latent(payload), latent)
    assert codec.clipped_fraction(latent) == 0.0


def test_out_of_range_latents_are_clamped_to_the_edges() -> None:
    codec = _codec()
    latent = np.full(SHAPE, 100.0, dtype=np.float32)
    decoded = codec.decode_latent(codec.encode_latent(latent))
    np.testing.assert_array_equal(decoded, np.broadcast_to((codec.offset + 8)[:, None, None], SHAPE))
    assert codec.clipped_fraction(latent) == 1.0


def test_a_payload_survives_a_state_round_trip(tmp_path: Path) -> None:
    codec = _codec(0)
    latent = np.zeros(SHAPE, dtype=np.float32)
    payload = codec.encode_latent(latent)
    with pytest.raises(CodecError):
        codec.decode_latent(payload[:-1])
    save_codec(codec, tmp_path / "c.npz")
    again = load_codec(tmp_path / "c.npz")
    np.testing.assert_array_equal(again.decode_latent(payload), codec.decode_latent(payload))


def test_prior_tables_hold_the_prior_mass() -> None:
    torch.manual_seed(0)
    net = LearnedBottleneck(BottleneckSpec(4, 4, 4, 4, 3, 2))
    offset, pmf = prior_tables(net.prior)
    assert pmf.shape[0] == 3 and np.allclose(pmf.sum(1), 1.0)
    n = torch.from_numpy(offset)[:, None] + torch.arange(pmf.shape[1])[None, :]  # (L, R) integers
    inner = net.prior.likelihood(n.float()[None, :, :, None])[0, :, 1:-1, 0].detach().numpy()
    np.testing.assert_allclose(pmf[:, 1:-1], inner, atol=1e-6)


def test_a_sharp_prior_keeps_its_mode_inside_the_range() -> None:
    net = LearnedBottleneck(BottleneckSpec(4, 4, 4, 4, 2, 2))
    with torch.no_grad():
        net.prior.means.fill_(0.6)  # all mass on the integer 1
        net.prior.log_scales.fill_(-5.0)
    offset, pmf = prior_tables(net.prior)
    assert (offset <= 1).all() and (offset + pmf.shape[1] - 1 >= 1).all()
    assert np.allclose(pmf[np.arange(2), 1 - offset], 1.0, atol=1e-6)


def _toy_rate(beta: float) -> float:
    """Bits per sample after fitting a tiny bottleneck to fixed random activations."""
    torch.manual_seed(0)
    data = torch.randn(64, 4, 4, 4) * 3
    net = LearnedBottleneck(BottleneckSpec(4, 4, 4, 8, 4, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(150):
        recon, bits = net(data)
        loss = torch.nn.functional.mse_loss(recon, data) + beta * bits.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(net.prior.bits(net.latent(data)).mean())


def test_rate_falls_as_beta_grows() -> None:
    rates = [_toy_rate(beta) for beta in (0.0, 1e-3, 1e-1)]
    assert rates[0] > rates[1] > rates[2], rates


@pytest.fixture
def teacher(tmp_path: Path, fake_fashion_root: Path) -> Path:
    write_tiny_space(tmp_path, fake_fashion_root)
    return tmp_path / "w_0.35.pt"


NODE = "features_4_conv_3"  # the fx node name of features.4 (the older block numbering's k = 5)


def _cfg(teacher: Path, **kw: object) -> BottleneckTrainConfig:
    base = {"epochs": 2, "batch_size": 16, "train_samples": 64, "eval_samples": 30, "checkpoint_every_s": 0.0}
    cfg = {"beta": 0.01, **base, **kw}
    return BottleneckTrainConfig(TINY_MODEL, 32, "features.4", weights=f"file:{teacher}", **cfg)  # type: ignore[arg-type]


def test_training_resumes_from_its_checkpoint(teacher: Path, fake_fashion: FashionMNIST, tmp_path: Path) -> None:
    straight = train_bottleneck(_cfg(teacher), fake_fashion, tmp_path / "a")

    def stop_at_3(step: int, total: int, info: dict[str, float]) -> None:
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_bottleneck(_cfg(teacher), fake_fashion, tmp_path / "b", progress=stop_at_3)
    ckpt = torch.load(tmp_path / "b" / f"{_cfg(teacher).name(NODE)}.ckpt", weights_only=True)
    assert ckpt["step"] == 3
    resumed = train_bottleneck(_cfg(teacher), fake_fashion, tmp_path / "b")
    for key, value in straight.module.state_dict().items():
        torch.testing.assert_close(resumed.module.state_dict()[key], value)
    assert resumed.card["steps"] == straight.card["steps"] == 8
    assert not (tmp_path / "b" / f"{_cfg(teacher).name(NODE)}.ckpt").exists()
    with pytest.raises(UserError, match="different training configuration"):
        torch.save({**ckpt, "config": {}}, tmp_path / "b" / f"{_cfg(teacher).name(NODE)}.ckpt")
        train_bottleneck(_cfg(teacher), fake_fashion, tmp_path / "b")


def _make_logits_depend_on_the_input(weights: Path) -> None:
    """A random MobileNetV2's logits are ~1e-9 (zero-initialised BatchNorm scales, unit running
    statistics): set the scales to 1, estimate the statistics on noise, widen the classifier."""
    torch.manual_seed(0)
    model = build_mobilenetv2(0.35, 10)
    state = torch.load(weights, weights_only=True)
    state.update({key: torch.ones_like(v) for key, v in state.items() if key.endswith("weight") and v.dim() == 1})
    model.load_state_dict(state)
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.momentum = None  # a plain average over the batch
    with torch.no_grad():
        model.train()(torch.randn(64, model.features[0][0].in_channels, 32, 32))
        model.classifier[-1].weight *= 10  # logits of a few units rather than tenths
    torch.save(model.state_dict(), weights)


def test_the_label_term_trains_the_bottleneck_towards_the_labels(
    teacher: Path, fake_fashion: FashionMNIST, tmp_path: Path
) -> None:
    # only the label term drives training (no distillation, no rate): its loss must fall
    _make_logits_depend_on_the_input(teacher)
    losses: list[float] = []
    cfg = _cfg(teacher, epochs=10, kl_weight=0.0, ce_weight=1.0, beta=0.0, lr=1e-2)
    train_bottleneck(cfg, fake_fashion, tmp_path / "ce", progress=lambda step, total, info: losses.append(info["ce"]))
    assert len(losses) == 40
    assert np.mean(losses[-8:]) < 0.8 * np.mean(losses[:8]), losses
    assert cfg.identity() != _cfg(teacher, epochs=10, kl_weight=0.0, beta=0.0, lr=1e-2).identity()


def test_a_finished_bottleneck_is_replaced_only_on_restart(
    teacher: Path, fake_fashion: FashionMNIST, tmp_path: Path
) -> None:
    first = train_bottleneck(_cfg(teacher, epochs=1), fake_fashion, tmp_path)
    weights = first.path.read_bytes()
    with pytest.raises(UserError, match="already trained .* pass --restart"):
        train_bottleneck(_cfg(teacher, epochs=1), fake_fashion, tmp_path)
    assert first.path.read_bytes() == weights
    again = train_bottleneck(_cfg(teacher, epochs=1, seed=1), fake_fashion, tmp_path, restart=True)
    assert again.path == first.path and again.path.read_bytes() != weights


def test_weights_load_without_running_pickled_code(teacher: Path, fake_fashion: FashionMNIST, tmp_path: Path) -> None:
    bn = train_bottleneck(_cfg(teacher, epochs=1), fake_fashion, tmp_path / "a")
    assert load_bottleneck(bn.path).sha256 == bn.sha256
    bn.path.write_bytes(pickle.dumps(_Evil()))  # would run print() on an unrestricted torch.load
    card = json.loads(bn.path.with_suffix(".json").read_text())
    with pytest.raises(UserError, match="SHA-256"):
        load_bottleneck(bn.path)
    card["weights_sha256"] = hashlib.sha256(bn.path.read_bytes()).hexdigest()
    bn.path.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(UserError, match="does not fit its card"):
        load_bottleneck(bn.path)


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("pickle code ran",))


def test_the_engine_scores_a_bottleneck_end_to_end(teacher: Path, fake_fashion: FashionMNIST, tmp_path: Path) -> None:
    bn = train_bottleneck(_cfg(teacher), fake_fashion, tmp_path / "a")
    assert (bn.card["model"], bn.card["split"], bn.card["k"]) == (TINY_MODEL, "features_4_conv_3", TINY_K["pca"])
    place = resolve_model(ModelChoice(TINY_MODEL, f"file:{teacher}", (32,), (bn.split,)))
    ev = Evaluator(fake_fashion, make_splits(fake_fashion), {TINY_MODEL: place}, {"calib": 10, "val": 30})
    params = {"kind": "bottleneck", "file": str(bn.path), "weights_sha256": bn.sha256, "beta": 0.01}
    k = TINY_K["pca"]
    config = Config.make(TINY_MODEL, 32, k, params)
    result = ev.evaluate(config)
    again = ev.evaluate(config)  # the activations now come from the in-memory cache (float16)
    np.testing.assert_array_equal(again.payload_bytes, result.payload_bytes)
    graph = ev.graph(TINY_MODEL, 32)
    with torch.no_grad():
        latent = bn.module.latent(graph.head(k)(torch.from_numpy(ev.inputs(TINY_MODEL, 32, "val"))))
        expected = graph.tail(k)(bn.module.decode(latent)).argmax(1).numpy()
    labels = fake_fashion.labels[ev.indices("val")]
    assert (result.correct == (expected == labels)).mean() >= 0.95  # ONNX Runtime vs PyTorch, float16 cache
    codec = ev.codec(config)
    assert result.payload_bytes[0] == len(codec.encode_latent(latent[0].numpy()))
    assert result.encode_macs == bn.card["encoder_macs"] > 0


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_mutated_and_truncated_payloads_decode_or_raise_codec_error(data: st.DataObject) -> None:
    codec = _codec()
    payload = bytearray(codec.encode_latent(np.zeros(SHAPE, dtype=np.float32) + codec.offset[:, None, None] + 3))
    cut = data.draw(st.integers(0, len(payload)))
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(payload) - 1), st.integers(0, 255)), max_size=4))
    for pos, value in flips:
        payload[pos] = value
    try:
        out = codec.decode_latent(bytes(payload[:cut] if data.draw(st.booleans()) else payload))
    except CodecError:
        return
    assert out.shape == SHAPE


def test_cli_trains_and_writes_a_card_measured_with_the_codec(
    teacher: Path, fake_fashion_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from optimizer.cli import main

    args = ["bottleneck", "train", "--alpha", "0.35", "--input-size", "32", "--split", "features.4", "--beta", "0.01"]
    args += ["--dataset", f"fashion-mnist:{fake_fashion_root}", "--weights", f"file:{teacher}", "--epochs", "1"]
    args += ["--batch-size", "16", "--train-samples", "32", "--eval-samples", "20", "--threads", "1"]
    assert main([*args, "--out", str(tmp_path / "bn"), "--format", "json"]) == 0
    card = json.loads(capsys.readouterr().out)
    for key in (
        "model",
        "split",
        "input_size",
        "k",
        "beta",
        "epochs",
        "wall_time_s",
        "val_accuracy_coded",
        "payload_bytes_mean",
    ):
        assert key in card, key
    assert card["coded_samples"] == 20 and card["payload_bytes_mean"] > 13
    assert json.loads((tmp_path / "bn" / f"{card['name']}.json").read_text()) == card
    state = torch.load(tmp_path / "bn" / f"{card['name']}.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    args[args.index("--beta") + 1] = "-1"
    assert main([*args, "--out", str(tmp_path / "bn")]) == 2  # a negative beta: one line, exit 2
    err = capsys.readouterr().err
    assert "ce_weight >= 0" in err and "beta=-1" in err and "step" not in err, err


def test_the_teacher_outputs_are_cached_between_trainings(
    teacher: Path, fake_fashion: FashionMNIST, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    batch = fake_fashion.batch
    monkeypatch.setattr(
        fake_fashion, "batch", lambda idx, size, prep=None: seen.append(len(idx)) or batch(idx, size, prep)
    )
    cache = tmp_path / "cache"
    first = train_bottleneck(_cfg(teacher, epochs=1), fake_fashion, tmp_path / "a", cache_dir=cache)
    assert sum(seen) == 64 + 30 and len(list((cache / "bottleneck-teacher").glob("teacher-*.pt"))) == 1
    seen.clear()
    again = train_bottleneck(_cfg(teacher, epochs=1, beta=0.02), fake_fashion, tmp_path / "b", cache_dir=cache)
    assert sum(seen) == 30  # only the val images of the card; the train images' outputs came from the cache
    assert first.card["steps"] == again.card["steps"]
