"""The context-adaptive coder (``ctx``): exact round trips, no loss on i.i.d. symbols, a gain on
correlated ones, state files checked on load, and decoding that only returns or raises CodecError."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.codecs import AnsCoder, CodecError, ContextCoder, FeatureCodec, load_codec, make_codec, save_codec

SHAPE = (16, 6, 6)


def _smooth_symbols(n: int, grid: tuple[int, int], m: int, alphabet: int, seed: int) -> np.ndarray:
    """Symbols of a spatially smooth field whose spread varies by region, like activations of an
    object on a plain background: (n * rows * cols, m)."""
    rng = np.random.default_rng(seed)
    rows, cols = grid
    coarse = rng.normal(size=(n, 1, rows // 3 + 2, cols // 3 + 2))
    field = np.repeat(np.repeat(coarse, 3, axis=2), 3, axis=3)[:, :, :rows, :cols]
    scale = np.where(np.abs(field) > 0.6, 2.0 + np.arange(m)[None, :, None, None] * 0, 0.3)
    values = field * 3 + rng.normal(size=(n, m, rows, cols)) * scale
    q = np.clip(np.rint(values) + alphabet // 2, 0, alphabet - 1).astype(np.int64)
    return q.transpose(0, 2, 3, 1).reshape(-1, m)


def _activations(n: int = 120, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    latent = np.repeat(np.repeat(rng.normal(size=(n, 4, 3, 3)), 2, axis=2), 2, axis=3)
    x = np.einsum("ck,nkhw->nchw", rng.normal(size=(16, 4)), latent) + 0.05 * rng.normal(size=(n, 16, 6, 6))
    return np.maximum(x, 0).astype(np.float32)


@given(
    rows=st.integers(1, 7),
    cols=st.integers(1, 7),
    m=st.integers(1, 5),
    bits=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=60, deadline=None, database=None)
def test_round_trips_exactly(rows: int, cols: int, m: int, bits: int, seed: int) -> None:
    """Every symbol of the alphabet, seen in calib or not, on any grid, decodes back exactly."""
    rng = np.random.default_rng(seed)
    alphabet, per = 1 << bits, rows * cols
    calib = np.minimum(rng.geometric(0.4, (20 * per, m)) - 1, alphabet - 1)
    coder = ContextCoder.fit(calib, alphabet, grid=(rows, cols))
    for sample in (rng.integers(0, alphabet, (per, m)), calib[:per], np.full((per, m), alphabet - 1)):
        body = coder.encode(sample)
        np.testing.assert_array_equal(coder.decode(body, per), sample)
        assert len(body) <= per * m * coder.max_symbol_bits // 8 + 64


def test_no_loss_on_iid_symbols_and_a_gain_on_correlated_ones() -> None:
    grid, m, alphabet = (12, 10), 4, 16
    rng = np.random.default_rng(1)
    iid = np.minimum(rng.geometric(0.3, (400 * 120, m)) - 1, alphabet - 1)
    ctx, ans = ContextCoder.fit(iid[: 300 * 120], alphabet, grid=grid), AnsCoder.fit(iid[: 300 * 120], alphabet)
    tests = iid[300 * 120 :].reshape(-1, 120, m)
    ctx_bytes = np.array([len(ctx.encode(s)) for s in tests])
    ans_bytes = np.array([len(ans.encode(s)) for s in tests])
    assert ctx_bytes.mean() <= ans_bytes.mean() + 4 and (ctx_bytes <= ans_bytes + 12).all()

    smooth = _smooth_symbols(400, grid, m, alphabet, seed=2)
    ctx, ans = ContextCoder.fit(smooth[: 300 * 120], alphabet, grid=grid), AnsCoder.fit(smooth[: 300 * 120], alphabet)
    tests = smooth[300 * 120 :].reshape(-1, 120, m)
    ctx_mean = np.mean([len(ctx.encode(s)) for s in tests])
    assert ctx_mean <= 0.9 * np.mean([len(ans.encode(s)) for s in tests])
    # the body approaches the context model's own cross-entropy
    assert ctx_mean <= np.mean([ctx.cross_entropy_bits(s) for s in tests]) / 8 + 8


@pytest.mark.parametrize(
    "params",
    [
        {"kind": "pca", "geometry": "channel", "components": 4, "bits": 4, "coder": "ctx"},
        {"kind": "pca", "geometry": "tile", "tile": 4, "components": 12, "bits": 5, "coder": "ctx"},
        {"kind": "pca", "geometry": "channel", "components": None, "bits": 3, "coder": "ctx"},
    ],
)
def test_the_pca_codec_codes_the_same_symbols_and_saves_its_state(params: dict, tmp_path: Path) -> None:
    x = _activations()
    codec = make_codec(params, SHAPE)
    assert isinstance(codec, FeatureCodec)
    codec.fit(x[:100])
    factorized = make_codec({**params, "coder": "ans"}, SHAPE)
    assert isinstance(factorized, FeatureCodec)
    factorized.fit(x[:100])
    for sample in x[100:]:
        symbols = codec.symbols(sample)
        np.testing.assert_array_equal(symbols, factorized.symbols(sample))
        np.testing.assert_array_equal(codec.decode_symbols(codec.encode_symbols(symbols)), symbols)
    payload = codec.encode(x[110])
    save_codec(codec, tmp_path / "codec.npz")
    again = load_codec(tmp_path / "codec.npz")
    assert again.encode(x[110]) == payload
    np.testing.assert_array_equal(again.decode(payload), codec.decode(payload))
    np.testing.assert_array_equal(codec.decode(payload), factorized.decode(factorized.encode(x[110])))


def _saved(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    codec = make_codec({"kind": "pca", "components": 4, "bits": 4, "coder": "ctx"}, SHAPE)
    codec.fit(_activations())  # type: ignore[attr-defined]
    path = tmp_path / "codec.npz"
    save_codec(codec, path)
    with np.load(path) as npz:
        return path, {k: npz[k].copy() for k in npz.files}


@pytest.mark.parametrize("name", ["a_counts", "a_ctx_centre", "a_ctx_edges1", "a_ctx_edges2"])
def test_tampered_state_is_refused(name: str, tmp_path: Path) -> None:
    path, arrays = _saved(tmp_path)
    if name == "a_ctx_centre":
        arrays[name][-1] ^= 1  # another valid centre
    else:
        arrays[name].flat[-1] += 1  # edges stay non-decreasing
    np.savez(path, **arrays)  # type: ignore[arg-type]
    with pytest.raises(CodecError, match="altered"):
        load_codec(path)


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("a_ctx_edges1", lambda e: e[..., ::-1] - 1, "edges"),  # decreasing and negative
        ("a_ctx_centre", lambda c: c + 99, "centres"),
        ("a_counts", lambda c: -c, "non-negative"),
        ("a_ctx_edges2", lambda e: e[:, :, :1], "ctx_edges2"),  # wrong shape
    ],
)
def test_inconsistent_state_is_refused_before_its_hash(name: str, value: object, needle: str, tmp_path: Path) -> None:
    path, arrays = _saved(tmp_path)
    arrays[name] = value(arrays[name])  # type: ignore[operator]
    np.savez(path, **arrays)  # type: ignore[arg-type]
    with pytest.raises(CodecError, match=needle):
        load_codec(path)


GRID, M, ALPHABET = (5, 4), 3, 16
_FUZZ_CODER = ContextCoder.fit(_smooth_symbols(50, GRID, M, ALPHABET, seed=3), ALPHABET, grid=GRID)
_FUZZ_BODY = _FUZZ_CODER.encode(_smooth_symbols(1, GRID, M, ALPHABET, seed=4))


@given(data=st.data())
@settings(max_examples=400, deadline=None, database=None)
def test_fuzzed_bodies_decode_or_raise_codec_error(data: st.DataObject) -> None:
    """Whatever the bytes: symbols of the declared shape inside the alphabet, or CodecError, and
    no other exception."""
    body = bytearray(_FUZZ_BODY)
    kind = data.draw(st.sampled_from(["truncate", "flip", "extend", "random"]))
    if kind == "truncate":
        body = body[: data.draw(st.integers(0, len(body) - 1))]
    elif kind == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            body[data.draw(st.integers(0, len(body) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "extend":
        body += data.draw(st.binary(min_size=1, max_size=16))
    else:
        body = bytearray(data.draw(st.binary(max_size=3 * len(body))))
    n = GRID[0] * GRID[1] if data.draw(st.booleans()) else data.draw(st.integers(0, 40))
    try:
        out = _FUZZ_CODER.decode(bytes(body), n)
    except CodecError:
        return
    assert out.shape == (GRID[0] * GRID[1], M) and out.min() >= 0 and out.max() < ALPHABET


@pytest.mark.parametrize("grid", [(1, 1), (1, 6), (5, 1), (4, 7)])
def test_fitting_sees_the_contexts_that_coding_uses(grid: tuple[int, int]) -> None:
    """The fit sums neighbours as grid slices, coding as gathers through the plan: equal."""
    samples = _smooth_symbols(6, grid, 3, 16, seed=5).reshape(6, -1, 3)
    coder = ContextCoder.fit(samples.reshape(-1, 3), 16, grid=grid)
    fitted = coder._batch_features(samples)
    coded = coder._features(coder._distances(samples))
    for a, b in zip(fitted, coded, strict=True):
        np.testing.assert_array_equal(a, b)


def test_fitting_needs_the_grid_and_whole_samples() -> None:
    symbols = np.zeros((30, 2), dtype=np.int64)
    with pytest.raises(CodecError, match="grid"):
        ContextCoder.fit(symbols, 4)
    with pytest.raises(CodecError, match="whole samples"):
        ContextCoder.fit(symbols, 4, grid=(4, 4))
    coder = ContextCoder.fit(symbols, 4, grid=(5, 3))
    with pytest.raises(CodecError, match="symbols below 4"):
        coder.encode(np.full((15, 2), 4))
    with pytest.raises(CodecError, match="at most 8 bits"):
        make_codec({"kind": "pca", "components": 4, "bits": 9, "coder": "ctx"}, SHAPE)


def test_work_counts_symbols_and_probability_values() -> None:
    codec = make_codec({"kind": "pca", "components": 4, "bits": 3, "coder": "ctx"}, SHAPE)
    for work in (codec.device_work(SHAPE), codec.server_work(SHAPE)):
        assert work.units == {"ctx": 36 * 4, "ctx_pmf": 36 * 4 * 8} and work.columns == {}
