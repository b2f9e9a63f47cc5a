"""Fit a profile's compute prices to measured runs: the calibration's one fit, torch-free.

A *run* is a graph of consecutive fx segments timed as one ONNX model (a segment alone, or a head:
segments 1..k). Each run gives one equation: its measured ms = the latency model's terms
(optimizer/profiler/_latency.py: the work of its segments plus one run's fixed costs) times unknown
prices. A non-negative least-squares fit (Lawson and Hanson, profiler/_nnls.py) on the *relative*
error (a 0.05 ms run matters as much as a 5 ms one, as the target is relative) yields them. The one
size in the model, ``weight_cache_bytes`` (the weights a head keeps in cache between runs; beyond it
they stream at ``weight_bytes_per_s``), is not linear: the fit is made at each size of a geometric
grid (``CACHE_GRID``: 0 and 128 KiB to 256 MiB in steps of sqrt(2)) and the size whose fit has the
lowest rms relative error is kept, with its prices. A zero coefficient means the fit found no
measurable cost for that term (its time is explained by the others); a rate then becomes
``UNMEASURABLE``, so predictions equal the fitted model.

The full install (``split-opt calibrate``, optimizer/profiler/_calibrate.py) and the device install
(``split-opt calibrate --kit``, optimizer/profiler/_kit_run.py) both fit here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from optimizer.profiler._costs import SegmentCost
from optimizer.profiler._latency import PRICE_KEYS, run_terms, terms, weight_bytes
from optimizer.profiler._nnls import nnls

__all__ = ["CACHE_GRID", "MIN_CODING_REPEATS", "UNMEASURABLE", "Calibration", "Run", "fit_compute", "sample_terms"]

UNMEASURABLE = 1e15  # per second: no measurable cost at this machine's timer resolution
MIN_CODING_REPEATS = 25  # coding steps take microseconds: never fewer repeats than this
_RATE_SCALE = 1e6  # rate columns in millions, so coefficients come out in ms per million units
CACHE_GRID = (0.0, *(2.0 ** (17 + i / 2) for i in range(23)))  # weight_cache_bytes tried: 0, 128 KiB .. 256 MiB


@dataclass(frozen=True)
class Calibration:
    values: dict[str, float]  # fitted compute key -> value (UNMEASURABLE where a rate's coefficient is 0)
    residual_ms: float  # rms of (predicted - measured) over the samples
    rms_relative_error: float
    samples: int


class Run(NamedTuple):
    """One measured graph: consecutive segments (a segment alone, or a head: segments 1..k)."""

    segments: list[SegmentCost]
    ms: float
    head: bool = False


def sample_terms(run: Sequence[SegmentCost], bytes_per_weight: float, cache_bytes: float = 0.0) -> dict[str, float]:
    """What a run of consecutive segments (one graph) pays: their work and one run's fixed costs
    (its weights beyond ``cache_bytes`` streamed)."""
    weights = weight_bytes(run, bytes_per_weight)
    total = Counter[str](run_terms(run[0].input_elements, run[-1].output_elements, weights, cache_bytes))
    for segment in run:
        total.update(terms(segment))
    return dict(total)


def _scale(key: str) -> float:
    return _RATE_SCALE if key.endswith("_per_s") else 1.0


def fit_compute(samples: Sequence[Run], bytes_per_weight: float = 4.0, cache_bytes: float | None = None) -> Calibration:
    """Prices that best explain the measured runs, for every compute key whose work occurs in them,
    and ``weight_cache_bytes`` (given, or the best of ``CACHE_GRID``) where the runs hold weights."""
    if not any(layer.params for sample in samples for segment in sample.segments for layer in segment.layers):
        return _fit_prices(samples, bytes_per_weight, 0.0)[0]
    sizes = CACHE_GRID if cache_bytes is None else (cache_bytes,)
    fits = [_fit_prices(samples, bytes_per_weight, size) for size in sizes]
    best, size = min(fits, key=lambda fit: (round(fit[0].rms_relative_error, 12), fit[1]))
    values = {**best.values, "weight_cache_bytes": size}
    return Calibration(values, best.residual_ms, best.rms_relative_error, best.samples)


def _fit_prices(samples: Sequence[Run], bytes_per_weight: float, cache_bytes: float) -> tuple[Calibration, float]:
    """The prices that best explain the runs with ``cache_bytes`` of weights cached (NNLS, relative error)."""
    counts = [sample_terms(sample.segments, bytes_per_weight, cache_bytes) for sample in samples]
    keys = [k for k in PRICE_KEYS if any(c.get(k, 0.0) for c in counts)]
    a = np.array([[c.get(k, 0.0) / _scale(k) for k in keys] for c in counts])
    b = np.array([sample.ms for sample in samples])
    weight = 1.0 / np.maximum(b, 1e-6)
    coef, _ = nnls(a * weight[:, None], b * weight)
    values = {
        key: float(_RATE_SCALE * 1e3 / c if c > 0 else UNMEASURABLE) if key.endswith("_per_s") else float(c)
        for key, c in zip(keys, coef, strict=True)
    }
    predicted = a @ coef
    fit = Calibration(
        values,
        float(np.sqrt(np.mean((predicted - b) ** 2))),
        float(np.sqrt(np.mean((predicted / b - 1) ** 2))),
        len(b),
    )
    return fit, cache_bytes
