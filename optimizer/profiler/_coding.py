"""Measure and fit a machine's coding costs: entropy coders, float16 conversion, image codecs.

Each unit is timed through the real codec code (FeatureCodec.encode_symbols with each coder,
Float16Codec and ImageCodec bodies) at several sizes on synthetic inputs (geometric-like symbols;
smooth images with noise), median of ``repeats`` runs each, and fitted as ``ms = call + count /
rate`` by least squares on the relative error (small payloads matter as much as large ones). The
codec's own fixed path (``call_ms``: vectors, projection dispatch, quantization, the wire header)
is the median of a whole FeatureCodec.encode on a one-value activation minus its coder's fixed cost.
Nothing here needs torch, so a device install can run it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from optimizer.codecs import ENTROPY_CODERS, FeatureCodec, Float16Codec, ImageCodec

__all__ = ["CodingFit", "fit_coding", "measure_coding"]

SYMBOL_COUNTS = (16, 64, 256, 1024, 4096)
PIXEL_SIDES = (16, 28, 48, 96, 160)
FLOAT16_COUNTS = (256, 4096, 65536)
_ALPHABET_BITS = 4


@dataclass(frozen=True)
class CodingFit:
    values: dict[str, float]  # coding key -> fitted value
    rms_relative_error: float  # of the fit over the measured samples
    samples: int


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def _feature_codec(coder: str, n_blocks: int, width: int, rng: np.random.Generator) -> FeatureCodec:
    codec = FeatureCodec(
        {"kind": "pca", "geometry": "channel", "components": width, "bits": _ALPHABET_BITS, "coder": coder},
        (width, 1, n_blocks),
    )
    if coder != "raw":
        codec.coder = ENTROPY_CODERS[coder].fit(_symbols(rng, (4096, width)), 1 << _ALPHABET_BITS)
    codec.fitted = True
    return codec


def _symbols(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    return np.minimum(rng.geometric(0.3, shape) - 1, (1 << _ALPHABET_BITS) - 1)


def _image(rng: np.random.Generator, side: int) -> np.ndarray:
    ramp = np.add.outer(np.arange(side), np.arange(side)) * (255 / (2 * side))
    return np.clip(ramp + rng.normal(0, 12, (side, side)), 0, 255).astype(np.uint8)


def measure_coding(repeats: int = 25, seed: int = 0) -> list[tuple[str, int, float]]:
    """(unit, count, median ms) samples of every coding unit, plus ("call", 1, ms) samples."""
    rng = np.random.default_rng(seed)
    out: list[tuple[str, int, float]] = []
    width = 8
    for coder in ("ans", "huffman", "raw"):
        for count in SYMBOL_COUNTS:
            codec = _feature_codec(coder, count // width, width, rng)
            symbols = _symbols(rng, (count // width, width))
            out.append((coder, count, _median_ms(partial(codec.encode_symbols, symbols), repeats)))
        tiny = _feature_codec(coder, 1, 1, rng)
        tiny.mean, tiny.basis = np.zeros(1, np.float32), np.ones((1, 1), np.float32)
        tiny.lo, tiny.step = np.zeros(1, np.float32), np.ones(1, np.float32)
        x = np.ones((1, 1, 1), np.float32)
        out.append((f"call:{coder}", 1, _median_ms(partial(tiny.encode, x), repeats)))
    f16 = Float16Codec({"kind": "float16"}, (1,)).fit()
    for count in FLOAT16_COUNTS:
        values = rng.standard_normal(count).astype(np.float32)
        out.append(("float16", count, _median_ms(partial(f16.encode_body, values), repeats)))
    for fmt in ("jpeg", "webp", "png"):
        image_codec = ImageCodec({"kind": "image", "format": fmt, "quality": 75})
        for side in PIXEL_SIDES:
            image = _image(rng, side)
            out.append((fmt, side * side, _median_ms(partial(image_codec.encode_body, image), repeats)))
    return out


def _fit_line(counts: np.ndarray, ms: np.ndarray) -> tuple[float, float]:
    """(intercept ms, ms per unit) >= 0, minimising the relative error."""
    a = np.stack([np.ones_like(counts), counts], axis=1) / ms[:, None]
    coef = np.linalg.lstsq(a, np.ones_like(ms), rcond=None)[0]
    if coef[0] < 0:
        coef = np.array([0.0, float(np.sum(counts * ms / ms**2) / np.sum(counts**2 / ms**2))])
    if coef[1] <= 0:
        coef = np.array([float(np.median(ms)), 1e-12])
    return float(coef[0]), float(coef[1])


def fit_coding(samples: list[tuple[str, int, float]]) -> CodingFit:
    values: dict[str, float] = {}
    errors: list[float] = []
    units = sorted({u for u, _, _ in samples if not u.startswith("call:")})
    for unit in units:
        rows = [(c, m) for u, c, m in samples if u == unit]
        counts, ms = np.array([c for c, _ in rows], float), np.array([m for _, m in rows], float)
        intercept, per_unit = _fit_line(counts, ms)
        errors += list((intercept + per_unit * counts) / ms - 1)
        suffix = {"float16": "values"}.get(unit, "pixels" if unit in ("jpeg", "webp", "png") else "symbols")
        values[f"{unit}_{suffix}_per_s"] = 1e3 / per_unit
        if unit != "float16":
            values[f"{unit}_call_ms"] = intercept
    calls = [m - values[f"{u.split(':')[1]}_call_ms"] for u, _, m in samples if u.startswith("call:")]
    values["call_ms"] = max(0.0, float(np.median(calls))) if calls else 0.0
    rms = float(np.sqrt(np.mean(np.square(errors)))) if errors else 0.0
    return CodingFit(values, rms, len(samples))
