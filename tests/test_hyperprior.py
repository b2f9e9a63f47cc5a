"""The bottleneck's mean-scale hyperprior: the rate term, the codec's numpy side nets against the
torch ones, exact round trips, coded bytes against the model's rate, state files, fuzzing, and a
tiny training through ``train_bottleneck``. Tiny nets and data only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_tiny_space
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.codecs import BottleneckCodec, CodecError, load_codec, make_codec, save_codec
from optimizer.codecs._hyperprior import LATENT_BOUND, conv3x3
from optimizer.data import FashionMNIST
from optimizer.models import (
    BottleneckSpec,
    BottleneckTrainConfig,
    LearnedBottleneck,
    hyperprior_arrays,
    load_bottleneck,
    prior_tables,
    train_bottleneck,
)

SPEC = BottleneckSpec(4, 5, 7, 6, 3, 1, entropy="hyperprior", side=2)  # latent (3, 5, 7), side (2, 3, 4)


def _net(seed: int = 0) -> LearnedBottleneck:
    torch.manual_seed(seed)
    net = LearnedBottleneck(SPEC).eval()
    with torch.no_grad():  # a spread of means and scales, not the untrained ~N(0, 1) everywhere
        net.encoder[2].weight.mul_(4.0)
    return net


def _codec(net: LearnedBottleneck) -> BottleneckCodec:
    assert net.hyper is not None
    codec = make_codec({"kind": "bottleneck", "file": "w.pt"}, SPEC.latent_shape)
    assert isinstance(codec, BottleneckCodec)
    return codec.fit_hyperprior(hyperprior_arrays(net.hyper), *prior_tables(net.hyper.side_prior))


def _latents(net: LearnedBottleneck, n: int, seed: int = 1) -> np.ndarray:
    torch.manual_seed(seed)
    return net.latent(torch.randn(n, SPEC.channels, SPEC.height, SPEC.width)).numpy()


def test_the_rate_term_is_finite_and_trains_every_part_of_the_hyperprior() -> None:
    net = _net().train()
    recon, bits = net(torch.randn(4, SPEC.channels, SPEC.height, SPEC.width))
    assert recon.shape == (4, SPEC.channels, SPEC.height, SPEC.width)
    assert bits.shape == (4,) and torch.isfinite(bits).all() and (bits > 0).all()
    bits.sum().backward()
    assert net.hyper is not None and net.prior is None
    for part in (net.encoder, net.hyper.hyper_encoder, net.hyper.hyper_decoder, net.hyper.side_prior):
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert any(float(g.abs().sum()) > 0 for g in grads if g is not None)


def test_numpy_side_nets_match_torch() -> None:
    net, lat = _net(), _latents(_net(), 3)
    codec = _codec(net)
    hyper = codec.hyper
    assert hyper is not None and net.hyper is not None
    for y in lat:
        z = hyper.side_latent(y.astype(np.float64))
        z_torch = torch.round(net.hyper.side(torch.from_numpy(y[None])))[0].detach().numpy()
        np.testing.assert_array_equal(z + hyper.state["z_offset"][:, None, None], z_torch)
        mean, scale = hyper.mean_scale(z)
        m_torch, s_torch = net.hyper.mean_scale(torch.from_numpy(z_torch[None]), SPEC.latent_shape[1:])
        np.testing.assert_allclose(mean, m_torch.detach().numpy().ravel(), atol=1 / 128 + 1e-5)  # the mean grid
        np.testing.assert_allclose(scale, s_torch.detach().numpy().ravel(), rtol=0.06)  # the scale table


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_latents_round_trip_exactly(seed: int) -> None:
    codec = _codec(_net())
    latent = np.random.default_rng(seed).integers(-12, 13, size=SPEC.latent_shape).astype(np.float32)
    np.testing.assert_array_equal(codec.decode_latent(codec.encode_latent(latent)), latent)


def test_values_beyond_the_range_are_clamped_and_still_decode() -> None:
    codec = _codec(_net())
    latent = np.zeros(SPEC.latent_shape, dtype=np.float32)
    latent[0, 0, 0], latent[1, 2, 3] = 1000.0, -1000.0
    decoded = codec.decode_latent(codec.encode_latent(latent))
    assert decoded[0, 0, 0] == LATENT_BOUND and decoded[1, 2, 3] == -LATENT_BOUND
    assert codec.clipped_fraction(latent) == pytest.approx(2 / latent.size)


def test_coded_bytes_follow_the_models_rate() -> None:
    """The body costs what the hyperprior's rate says (up to the grid and ANS's 32-bit words), and a
    latent the model finds likely is coded shorter than one it does not."""
    net = _net()
    codec = _codec(net)
    lat = _latents(net, 12)
    bits = net.bits(torch.from_numpy(lat)).detach().numpy()
    for y, b in zip(lat, bits, strict=True):
        body = len(codec.encode_symbols(codec.latent_symbols(y)))
        assert b / 8 - 4 <= body <= 1.05 * b / 8 + 8, (body, b / 8)
    assert net.hyper is not None
    noise = lat + np.random.default_rng(0).integers(-6, 7, size=lat.shape)
    assert net.bits(torch.from_numpy(noise.astype(np.float32))).mean() > bits.mean()


def test_state_round_trips_and_a_tampered_state_is_refused(tmp_path: Path) -> None:
    codec = _codec(_net())
    payload = codec.encode_latent(_latents(_net(), 1)[0])
    save_codec(codec, tmp_path / "c.npz")
    loaded = load_codec(tmp_path / "c.npz")
    assert isinstance(loaded, BottleneckCodec) and loaded.hyper is not None
    assert loaded.state_hash() == codec.state_hash()
    np.testing.assert_array_equal(loaded.decode_latent(payload), codec.decode_latent(payload))
    arrays = codec.arrays()
    other = make_codec({"kind": "bottleneck", "file": "w.pt"}, SPEC.latent_shape)
    with pytest.raises(CodecError, match="hd2_w"):
        other.load_arrays({**arrays, "hd2_w": arrays["hd2_w"][:, :, :2]})
    with pytest.raises(CodecError, match="lacks"):
        other.load_arrays({k: v for k, v in arrays.items() if k != "he1_b"})
    assert _codec(_net(seed=1)).state_hash() != codec.state_hash()


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_and_truncated_payloads_decode_or_raise_codec_error(data: st.DataObject) -> None:
    codec = _codec(_net())
    payload = bytearray(codec.encode_latent(_latents(_net(), 1)[0]))
    cut = data.draw(st.integers(0, len(payload)))
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(payload) - 1), st.integers(0, 255)), max_size=4))
    for pos, value in flips:
        payload[pos] = value
    try:
        out = codec.decode_latent(bytes(payload[:cut] if data.draw(st.booleans()) else payload))
    except CodecError:
        return
    assert out.shape == SPEC.latent_shape


@pytest.fixture
def teacher(tmp_path: Path, fake_fashion_root: Path) -> Path:
    write_tiny_space(tmp_path, fake_fashion_root)
    return tmp_path / "w_0.35.pt"


def test_training_writes_a_hyperprior_bottleneck_and_its_card(
    teacher: Path, fake_fashion: FashionMNIST, tmp_path: Path
) -> None:
    cfg = BottleneckTrainConfig(
        "mobilenetv2:alpha=0.35",
        32,
        "features.4",
        0.01,
        weights=f"file:{teacher}",
        epochs=1,
        batch_size=16,
        train_samples=32,
        eval_samples=20,
    )
    hyper = BottleneckTrainConfig(**{**cfg.__dict__, "entropy": "hyperprior", "side": 3})
    node = "features_4_conv_3"
    assert cfg.name(node) != hyper.name(node) and hyper.name(node).endswith("_hyperprior")
    assert "entropy" not in cfg.identity() and hyper.identity()["entropy"] == "hyperprior"
    bn = train_bottleneck(hyper, fake_fashion, tmp_path / "bn")
    again = load_bottleneck(bn.path)
    assert again.entropy == "hyperprior" and again.card["spec"]["side"] == 3
    assert again.module.hyper is not None and again.module.prior is None
    assert np.isfinite(again.card["val_prior_bits_mean"]) and again.card["val_prior_bits_mean"] > 0


@pytest.mark.parametrize(
    ("shape", "stride", "up"), [((3, 5, 7), 1, 1), ((3, 5, 7), 2, 1), ((2, 3, 4), 1, 2), ((2, 1, 1), 1, 2)]
)
def test_the_numpy_convolution_is_torchs(shape: tuple[int, int, int], stride: int, up: int) -> None:
    conv = torch.nn.Conv2d(shape[0], 5, 3, stride=stride, padding=1).double()
    x = np.random.default_rng(0).normal(size=shape)
    xt = torch.nn.functional.interpolate(torch.from_numpy(x)[None], scale_factor=up, mode="nearest")
    expected = conv(xt)[0].detach().numpy()
    got = conv3x3(x, conv.weight.detach().numpy(), conv.bias.detach().numpy(), stride, up)
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_cli_trains_a_hyperprior_bottleneck_and_measures_it_through_the_codec(
    teacher: Path, fake_fashion_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from optimizer.cli import main

    args = ["bottleneck", "train", "--alpha", "0.35", "--input-size", "32", "--split", "features.4", "--beta", "0.01"]
    args += ["--dataset", f"fashion-mnist:{fake_fashion_root}", "--weights", f"file:{teacher}", "--epochs", "1"]
    args += ["--batch-size", "16", "--train-samples", "32", "--eval-samples", "20", "--threads", "1"]
    args += ["--entropy", "hyperprior", "--side", "2", "--out", str(tmp_path / "bn"), "--format", "json"]
    assert main(args) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["entropy"] == "hyperprior" and card["name"].endswith("_hyperprior")
    assert card["coded_samples"] == 20 and card["payload_bytes_mean"] > 0
    # the codec's bytes follow the model's rate: about the card's bits, plus header and 32-bit words
    assert card["payload_bytes_mean"] >= card["val_prior_bits_mean"] / 8
