"""Measure and fit a machine's coding costs: entropy coders, float16 conversion, image codecs.

What is timed is what a deployed device runs after head.onnx (which already projects and
quantizes): ``codec.wrap(codec.encode_symbols(symbols))`` for each entropy coder, ``encode`` for
float16 and the image codecs. Each is timed at several sizes on synthetic inputs (geometric-like
symbols in 4 and 16 columns; smooth photo-like images), the lowest of three medians of ``repeats``
runs, and fitted on
the relative error (small payloads matter as much as large ones):

    ms = call_ms + UNIT_call_ms + columns x UNIT_column_ms + count / UNIT_..._per_s

where ``call_ms`` is the wire header and dispatch alone (``codec.wrap`` of a short body). Nothing
here needs torch, so a device install can run it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
from PIL import Image

from optimizer.codecs import ENTROPY_CODERS, FeatureCodec, Float16Codec, ImageCodec
from optimizer.profiler._nnls import nnls

__all__ = ["CodingFit", "Sample", "fit_coding", "measure_coding"]

SYMBOL_COUNTS = (64, 256, 1024, 4096, 16384)
WIDTHS = (4, 16)
PIXEL_SIDES = (16, 28, 48, 96, 160, 256)
FLOAT16_COUNTS = (256, 4096, 65536)
_ALPHABET_BITS = 4


@dataclass(frozen=True)
class Sample:
    unit: str  # ans, huffman, raw, float16, jpeg, webp, png, or call
    count: int  # symbols, values or pixels
    columns: int
    ms: float


@dataclass(frozen=True)
class CodingFit:
    values: dict[str, float]  # coding key -> fitted value
    rms_relative_error: float  # of the fit over the measured samples
    samples: int


def _median_ms(fn: Callable[[], object], repeats: int, rounds: int = 3) -> float:
    """The lowest of ``rounds`` medians of ``repeats`` timed calls: a burst of other work on the
    machine then spoils one round, not the fit."""
    fn()  # warm-up
    medians = []
    for _ in range(rounds):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        medians.append(float(np.median(times)))
    return min(medians) * 1e3


def _symbols(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    return np.minimum(rng.geometric(0.3, shape) - 1, (1 << _ALPHABET_BITS) - 1)


def _feature_codec(coder: str, n_blocks: int, width: int, rng: np.random.Generator) -> FeatureCodec:
    params = {"kind": "pca", "geometry": "channel", "components": width, "bits": _ALPHABET_BITS, "coder": coder}
    codec = FeatureCodec(params, (width, 1, n_blocks))
    if coder != "raw":
        codec.coder = ENTROPY_CODERS[coder].fit(_symbols(rng, (4096, width)), 1 << _ALPHABET_BITS)
    codec.mean, codec.basis = np.zeros(width, np.float32), np.eye(width, dtype=np.float32)
    codec.lo, codec.step = np.zeros(width, np.float32), np.ones(width, np.float32)
    codec.fitted = True
    return codec


def _coded(codec: FeatureCodec, symbols: np.ndarray) -> bytes:
    return codec.wrap(codec.encode_symbols(symbols))


def _image(rng: np.random.Generator, side: int) -> np.ndarray:
    """A photo-like test image: a coarse random field resized up (smooth areas and edges), light noise.
    NOTE: content matters to PNG and WebP (deflate and prediction are slower on smooth images
    than on noise), so the calibration images are smooth, as camera frames and resized images are."""
    coarse = Image.fromarray(rng.integers(0, 256, (7, 7), dtype=np.uint8))
    smooth = np.asarray(coarse.resize((side, side), Image.Resampling.BILINEAR), dtype=np.float64)
    return np.clip(smooth + rng.normal(0, 2, (side, side)), 0, 255).astype(np.uint8)


def measure_coding(repeats: int = 25, seed: int = 0) -> list[Sample]:
    """Timed samples of the wire header alone and of every coding unit at several sizes."""
    rng = np.random.default_rng(seed)
    header = _feature_codec("raw", 1, 1, rng)
    out = [Sample("call", 1, 0, _median_ms(partial(header.wrap, bytes(16)), repeats))]
    for coder in ("ans", "huffman", "raw"):
        for width in WIDTHS:
            for count in SYMBOL_COUNTS:
                codec = _feature_codec(coder, count // width, width, rng)
                symbols = _symbols(rng, (count // width, width))
                out.append(Sample(coder, count, width, _median_ms(partial(_coded, codec, symbols), repeats)))
    for count in FLOAT16_COUNTS:
        f16 = Float16Codec({"kind": "float16"}, (count,)).fit()
        values = rng.standard_normal(count).astype(np.float32)
        out.append(Sample("float16", count, 0, _median_ms(partial(f16.encode, values), repeats)))
    for fmt in ("jpeg", "webp", "png"):
        image_codec = ImageCodec({"kind": "image", "format": fmt, "quality": 75})
        for side in PIXEL_SIDES:
            image = _image(rng, side)
            out.append(Sample(fmt, side * side, 0, _median_ms(partial(image_codec.encode, image), repeats)))
    return out


def _fit_unit(rows: list[Sample], call_ms: float, with_columns: bool) -> tuple[np.ndarray, list[float]]:
    """(intercept ms, ms per column, ms per unit) on the relative error, and the relative errors."""
    ms = np.array([r.ms for r in rows])
    features = np.array([[1.0, float(r.columns), float(r.count)] for r in rows])
    if not with_columns:
        features[:, 1] = 0.0
    coef = nnls(features / ms[:, None], (ms - call_ms) / ms)[0]
    coef[2] = max(coef[2], 1e-12)
    predicted = call_ms + features @ coef
    return coef, list(predicted / ms - 1)


def fit_coding(samples: list[Sample]) -> CodingFit:
    call_ms = float(np.median([s.ms for s in samples if s.unit == "call"] or [0.0]))
    values: dict[str, float] = {"call_ms": call_ms}
    errors: list[float] = []
    for unit in sorted({s.unit for s in samples} - {"call"}):
        rows = [s for s in samples if s.unit == unit]
        coef, errs = _fit_unit(rows, call_ms, with_columns=unit == "ans")
        errors += errs
        suffix = {"float16": "values"}.get(unit, "pixels" if unit in ("jpeg", "webp", "png") else "symbols")
        values[f"{unit}_{suffix}_per_s"] = 1e3 / coef[2]
        if unit != "float16":
            values[f"{unit}_call_ms"] = float(coef[0])
        if unit == "ans":
            values["ans_column_ms"] = float(coef[1])
    rms = float(np.sqrt(np.mean(np.square(errors)))) if errors else 0.0
    return CodingFit(values, rms, len(samples))
