"""Codecs: exact entropy coding, optimal Huffman lengths, PCA/quantizer behaviour, state files,
the wire format, and decoding that never does anything but return or raise CodecError."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer.codecs import (
    AnsCoder,
    CodecError,
    HuffmanCoder,
    PrincipalBasis,
    header_bytes,
    huffman_lengths,
    load_codec,
    make_codec,
    save_codec,
)
from optimizer.codecs._entropy import canonical_codes
from optimizer.protocol import read_tag

SHAPE = (16, 6, 6)


def _activations(n: int = 120, seed: int = 0) -> np.ndarray:
    """Correlated channels (a rank-4 signal plus noise), like real activations."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 4, 6, 6))
    mix = rng.normal(size=(16, 4))
    x = np.einsum("ck,nkhw->nchw", mix, latent) + 0.05 * rng.normal(size=(n, 16, 6, 6))
    return np.maximum(x, 0).astype(np.float32)


# --- Huffman ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "lengths"),
    [
        ([8, 4, 2, 1, 1], [1, 2, 3, 4, 4]),
        ([1, 1, 1, 1], [2, 2, 2, 2]),
        ([5, 5], [1, 1]),
        ([10, 1, 1, 1, 1, 1, 1, 1, 1], None),
    ],
)
def test_huffman_lengths_are_optimal(counts: list[int], lengths: list[int] | None) -> None:
    got = huffman_lengths(np.array(counts))
    if lengths is not None:
        assert sorted(got.tolist()) == sorted(lengths)
    # optimal: no prefix code of any other lengths has a smaller expected length (brute force)
    best = (
        min(
            sum(c * ln for c, ln in zip(counts, cand, strict=True))
            for cand in itertools.product(range(1, len(counts)), repeat=len(counts))
            if sum(2.0**-ln for ln in cand) <= 1
        )
        if len(counts) <= 6
        else None
    )
    if best is not None:
        assert sum(c * ln for c, ln in zip(counts, got, strict=True)) == best


@given(st.lists(st.integers(1, 10_000), min_size=2, max_size=64))
@settings(max_examples=200, deadline=None)
def test_canonical_codes_are_prefix_free_and_complete(counts: list[int]) -> None:
    lengths = huffman_lengths(np.array(counts))
    codes = canonical_codes(lengths)
    words = [format(int(c), f"0{int(n)}b") for c, n in zip(codes, lengths, strict=True)]
    assert not any(a != b and b.startswith(a) for a in words for b in words)
    assert sum(2.0 ** -int(n) for n in lengths) == pytest.approx(1.0)  # a full tree
    assert lengths.max() <= 15


def test_huffman_length_limit_keeps_long_tails_decodable() -> None:
    counts = np.array([2**k for k in range(24)])  # unlimited Huffman would need 23-bit codes
    assert huffman_lengths(counts).max() <= 15


# --- entropy coders -----------------------------------------------------------------------------


@pytest.mark.parametrize("coder_cls", [HuffmanCoder, AnsCoder])
@given(data=st.data())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_entropy_coders_round_trip_exactly(coder_cls: type, data: st.DataObject) -> None:
    alphabet = data.draw(st.sampled_from([2, 3, 16, 256]))
    m = data.draw(st.integers(1, 5))
    n = data.draw(st.integers(0, 50))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    calib = rng.integers(0, alphabet, size=(100, m))
    coder = coder_cls.fit(calib, alphabet)
    symbols = rng.integers(0, alphabet, size=(n, m))
    np.testing.assert_array_equal(coder.decode(coder.encode(symbols), n), symbols)


def test_coders_approach_the_cross_entropy() -> None:
    rng = np.random.default_rng(0)
    symbols = np.clip(np.rint(rng.normal(8, 1.5, size=(5000, 4))), 0, 15).astype(np.int64)
    for cls in (HuffmanCoder, AnsCoder):
        coder = cls.fit(symbols[:4000], 16)
        test = symbols[4000:]
        bits = 8 * len(coder.encode(test))
        bound = coder.cross_entropy_bits(test)
        assert bound <= bits + 8  # nothing beats the model's cross-entropy by more than padding
        if cls is HuffmanCoder:
            assert bits <= bound + test.size + 8  # Huffman: within 1 bit per symbol
        else:
            assert bits <= 1.02 * bound + 64  # ANS: within 2 % plus the 32-bit flush words


# --- feature codecs -----------------------------------------------------------------------------


def _mse(params: dict, calib: np.ndarray, test: np.ndarray) -> float:
    codec = make_codec(params, SHAPE).fit(calib)  # type: ignore[attr-defined]
    return float(np.mean([np.mean((codec.decode(codec.encode(x)) - x) ** 2) for x in test]))


def test_reconstruction_error_falls_with_components_and_bits() -> None:
    x = _activations()
    calib, test = x[:100], x[100:]
    by_components = [_mse({"kind": "pca", "components": m, "bits": 8}, calib, test) for m in (1, 2, 3, 4, 8)]
    assert all(a > b for a, b in itertools.pairwise(by_components)), by_components
    by_bits = [_mse({"kind": "pca", "components": 4, "bits": b}, calib, test) for b in (1, 2, 3, 4, 6, 8)]
    assert all(a > b for a, b in itertools.pairwise(by_bits)), by_bits


@pytest.mark.parametrize(("geometry", "tile"), [("channel", 1), ("tile", 2)])
def test_principal_basis_matches_scikit_learn(geometry: str, tile: int) -> None:
    from sklearn.decomposition import PCA

    calib = _activations(200)
    basis = PrincipalBasis(calib, geometry, tile)
    reference = PCA(n_components=8, svd_solver="full").fit(basis.vectors)
    np.testing.assert_allclose(basis.mean, reference.mean_, atol=1e-5)
    # same directions, same signs (svd_flip's rule), on the components with distinct variances
    np.testing.assert_allclose(basis.directions[:4], reference.components_[:4], atol=1e-3)
    variances = basis.coefficients(8).var(axis=0, ddof=1)
    np.testing.assert_allclose(variances, reference.explained_variance_, rtol=1e-3)


@pytest.mark.parametrize("coder", ["ans", "huffman", "raw", "ctx"])
def test_a_shared_basis_fits_the_same_codec_as_a_fit_of_its_own(coder: str) -> None:
    """The search fits one basis per split and reuses it for every (components, bits, coder)."""
    calib, sample = _activations(100), _activations(1, seed=7)[0]
    shared = PrincipalBasis(calib, "channel", 1)
    for components, bits in [(8, 4), (2, 6), (16, 3), (4, 2), (None, 4)]:
        params = {"kind": "pca", "geometry": "channel", "components": components, "bits": bits, "coder": coder}
        own = make_codec(params, SHAPE).fit(calib)  # type: ignore[attr-defined]
        reused = make_codec(params, SHAPE).fit(calib, basis=shared)  # type: ignore[attr-defined]
        assert own.state_hash() == reused.state_hash()
        assert own.encode(sample) == reused.encode(sample)


@pytest.mark.parametrize(
    "params",
    [
        {"kind": "pca", "geometry": "channel", "components": 4, "bits": 4, "coder": "huffman"},
        {"kind": "pca", "geometry": "tile", "tile": 4, "components": 12, "bits": 5, "coder": "ans"},
        {"kind": "pca", "geometry": "channel", "components": None, "bits": 8, "coder": "ans"},
        {"kind": "pca", "geometry": "channel", "components": 3, "bits": 3, "coder": "raw"},
        {"kind": "pca", "geometry": "tile", "tile": 2, "components": 6, "bits": 4, "coder": "ctx"},
        {"kind": "float16"},
    ],
)
def test_feature_codecs_round_trip_and_save(params: dict, tmp_path: Path) -> None:
    x = _activations()
    codec = make_codec(params, SHAPE)
    codec.fit(x[:100])  # type: ignore[attr-defined]
    payload = codec.encode(x[110])
    out = codec.decode(payload)
    assert out.shape == SHAPE and out.dtype == np.float32
    assert len(payload) < 16 + codec.max_body_bytes()
    save_codec(codec, tmp_path / "codec.npz")
    again = load_codec(tmp_path / "codec.npz")
    assert again.encode(x[110]) == payload
    np.testing.assert_array_equal(again.decode(payload), out)


def test_tampered_state_is_refused(tmp_path: Path) -> None:
    codec = make_codec({"kind": "pca", "components": 4, "bits": 4}, SHAPE)
    codec.fit(_activations())  # type: ignore[attr-defined]
    path = tmp_path / "codec.npz"
    save_codec(codec, path)
    with np.load(path) as npz:
        arrays = {k: npz[k].copy() for k in npz.files}
    arrays["a_lo"][0] += 1.0
    np.savez(path, **arrays)
    with pytest.raises(CodecError, match="altered"):
        load_codec(path)
    np.savez(path, meta=np.array([object()], dtype=object))  # a pickled object array
    with pytest.raises(CodecError, match="unreadable"):
        load_codec(path)
    path.write_bytes(b"garbage")
    with pytest.raises(CodecError, match="unreadable"):
        load_codec(path)


def test_wire_format_2_header_is_a_tag_byte_and_the_body_length() -> None:
    x = _activations()
    codec = make_codec({"kind": "pca", "components": 4, "bits": 4}, SHAPE)
    codec.fit(x)  # type: ignore[attr-defined]
    payload = codec.encode(x[0], tag=5)
    body = codec.unwrap(payload)
    assert payload[0] == 0b1000_0101 and read_tag(payload) == 5 and payload[1] == len(body) < 128
    assert len(payload) == len(body) + 2 == len(body) + header_bytes(len(body))
    np.testing.assert_array_equal(codec.decode(payload), codec.decode(codec.encode(x[0])))
    assert header_bytes(127) == 2 and header_bytes(128) == 3 and header_bytes(16383) == 3
    with pytest.raises(CodecError, match="0..63"):
        codec.encode(x[0], tag=64)
    with pytest.raises(CodecError, match="wire format 1"):  # b"SO", version 1, codec id, state hash...
        codec.decode(b"SO\x01\x01" + bytes(4) + payload)
    with pytest.raises(CodecError, match="not a wire format 2 tag byte"):
        codec.decode(bytes([0x45]) + payload[1:])


def test_bad_codec_parameters() -> None:
    for params, needle in [
        ({"kind": "zip"}, "unknown codec kind"),
        ({"kind": "pca", "bits": 0}, "bits"),
        ({"kind": "pca", "bits": 4, "components": 99}, "components"),
        ({"kind": "pca", "bits": 4, "coder": "lzma"}, "coder"),
        ({"kind": "image", "format": "gif"}, "format"),
    ]:
        with pytest.raises(CodecError, match=needle):
            make_codec(params, SHAPE)


# --- image baselines and the class id -------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jpeg", "webp", "png"])
@pytest.mark.parametrize("shape", [(28, 28), (20, 30, 3)])
def test_image_codecs_round_trip(fmt: str, shape: tuple[int, ...]) -> None:
    image = np.random.default_rng(0).integers(0, 255, shape).astype(np.uint8)
    codec = make_codec({"kind": "image", "format": fmt, "quality": 90}, ())
    out = codec.decode(codec.encode(image))  # the shape comes from the image file
    grey_webp = fmt == "webp" and len(shape) == 2  # WebP has no grey mode: three equal channels
    assert out.shape == ((*shape, 3) if grey_webp else shape) and out.dtype == np.uint8
    if grey_webp:
        assert np.abs(out.astype(int) - out[..., :1]).max() <= 2
    if fmt == "png":
        np.testing.assert_array_equal(out, image)


def test_class_id_codec() -> None:
    codec = make_codec({"kind": "class-id"}, (10,))
    payload = codec.encode(np.eye(10, dtype=np.float32)[7])
    assert np.argmax(codec.decode(payload)) == 7 and len(payload) == 3  # tag, length, one byte
    wide = make_codec({"kind": "class-id"}, (1000,))
    payload = wide.encode(np.eye(1000, dtype=np.float32)[999])
    assert np.argmax(wide.decode(payload)) == 999 and len(payload) == 4
