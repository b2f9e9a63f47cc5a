"""Fit a profile's compute prices from latencies measured on the machine it describes.

A *run* is a graph of consecutive fx segments timed as one ONNX model: each segment of a few
(model spec, input size) pairs alone (optimizer/profiler/_measure.py, on the real activations),
and each head of those models (segments 1..k). Segments alone run with their weights warm in the
cache, heads stream the weights of every layer they hold, so both kinds of run are measured. Each
run gives one equation: its measured ms = the latency model's terms (optimizer/profiler/_latency.py:
the work of its segments plus one run's fixed costs) times unknown prices. A non-negative
least-squares fit (Lawson and Hanson, profiler/_nnls.py) on the *relative* error (a 0.05 ms run
matters as much as a 5 ms one, as the target is relative) yields them. The one size in the model,
``weight_cache_bytes`` (the weights a head keeps in cache between runs; beyond it they stream at
``weight_bytes_per_s``), is not linear: the fit is made at each size of a geometric grid
(``CACHE_GRID``: 0 and 128 KiB to 256 MiB in steps of sqrt(2)) and the size whose fit has the
lowest rms relative error is kept, with its prices. A price
whose work never occurs in the calibration models (no grouped convolution in MobileNetV2) keeps
the base profile's value and source. A zero coefficient means the fit found no measurable cost for
that term (its time is explained by the others); a rate then becomes ``UNMEASURABLE``, so
predictions equal the fitted model.
"""

from __future__ import annotations

import copy
import datetime as dt
import platform
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import yaml

from optimizer.config import DeviceProfile, load_yaml_mapping, parse_device_profile
from optimizer.models import build_model, split_graph
from optimizer.profiler._cache import spec_costs
from optimizer.profiler._coding import CodingFit, fit_coding, measure_coding
from optimizer.profiler._costs import SegmentCost
from optimizer.profiler._latency import PRICE_KEYS, run_terms, terms, weight_bytes
from optimizer.profiler._measure import measure_heads, measure_segments
from optimizer.profiler._nnls import nnls

__all__ = [
    "CACHE_GRID",
    "UNMEASURABLE",
    "Calibration",
    "Run",
    "apply_compute_fit",
    "calibrate_profile",
    "fit_compute",
    "measure_samples",
    "sample_terms",
]

UNMEASURABLE = 1e15  # per second: no measurable cost at this machine's timer resolution
_RATE_SCALE = 1e6  # rate columns in millions, so coefficients come out in ms per million units
CACHE_GRID = (0.0, *(2.0 ** (17 + i / 2) for i in range(23)))  # weight_cache_bytes tried: 0, 128 KiB .. 256 MiB


@dataclass(frozen=True)
class Calibration:
    values: dict[str, float]  # fitted compute key -> value (UNMEASURABLE where a rate's coefficient is 0)
    residual_ms: float  # rms of (predicted - measured) over the samples
    rms_relative_error: float
    samples: int


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


class Run(NamedTuple):
    """One measured graph: consecutive segments (a segment alone, or a head: segments 1..k)."""

    segments: list[SegmentCost]
    ms: float
    head: bool = False


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


def measure_samples(
    models: Sequence[tuple[str, int]],
    threads: int,
    repeats: int = 15,
    num_classes: int = 10,
    runtime: str = "onnxruntime",
    rounds: int = 3,
    heads: bool = True,
    clock: str = "auto",
) -> list[Run]:
    """Every fx segment alone and (``heads``) every head of every (model spec, input size), measured
    (``clock``: optimizer/profiler/_measure.py; with one thread, the thread's CPU time)."""
    out: list[Run] = []
    for spec, size in models:
        graph = split_graph(spec, build_model(spec, num_classes))
        segments = spec_costs(spec, num_classes, size).segments
        timings = measure_segments(graph, size, threads, repeats=repeats, runtime=runtime, rounds=rounds, clock=clock)
        out.extend(Run([segment], t.median_ms) for segment, t in zip(segments, timings, strict=True))
        if heads:
            timings = measure_heads(
                graph, size, None, threads, repeats=repeats, runtime=runtime, rounds=rounds, clock=clock
            )
            out.extend(Run(segments[:k], t.median_ms, True) for k, t in enumerate(timings, start=1))
    return out


def calibrate_profile(
    base_path: Path,
    out_path: Path,
    models: Sequence[tuple[str, int]],
    threads: int,
    name: str | None = None,
    repeats: int = 15,
    runtime: str = "onnxruntime",
    server_here: bool = False,
    parts: Sequence[str] = ("compute", "coding"),
) -> tuple[DeviceProfile, Calibration | None, CodingFit | None]:
    """Measure here, fit, and write a profile: ``base_path`` with its compute and/or coding sections
    replaced (and the server's coding section too when ``server_here``: the server is this machine)."""
    data: dict[str, Any] = load_yaml_mapping(base_path)
    base = parse_device_profile(data, base_path)  # refuse to start from a broken profile
    fit = _calibrate_compute(data, base, models, threads, repeats, runtime) if "compute" in parts else None
    coding = _calibrate_coding(data, max(repeats, 25), server_here) if "coding" in parts else None
    if name:
        data["name"] = name
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(yaml.safe_dump(data, sort_keys=False, width=100))
    return parse_device_profile(load_yaml_mapping(out_path), out_path), fit, coding


def _calibrate_compute(
    data: dict[str, Any],
    base: DeviceProfile,
    models: Sequence[tuple[str, int]],
    threads: int,
    repeats: int,
    runtime: str,
) -> Calibration:
    samples = measure_samples(models, threads, repeats, runtime=runtime)
    fit = fit_compute(samples, base.memory.bytes_per_weight.value)
    apply_compute_fit(data, fit, models, threads, runtime)
    return fit


def apply_compute_fit(
    data: dict[str, Any], fit: Calibration, models: Sequence[tuple[str, int]], threads: int, runtime: str
) -> None:
    """Write a fit's prices, each with where it was measured, into a profile's data (in place)."""
    where = (
        f"calibrated by `split-opt calibrate` on {platform.node() or 'this machine'} "
        f"({platform.machine()}, {platform.processor() or 'cpu'}) on {dt.date.today()}, "
        f"{runtime}, {threads} thread(s), models {', '.join(f'{s}@{n}' for s, n in models)}, "
        f"{fit.samples} runs (segments alone and heads), rms relative error {fit.rms_relative_error:.1%}"
    )
    compute = data["compute"]
    for key, value in fit.values.items():
        note = " (fit coefficient 0: no measurable cost)" if value == UNMEASURABLE else ""
        if key == "weight_cache_bytes":
            note = " (the size among CACHE_GRID whose fit explains the runs best)"
        compute[key] = {"value": float(f"{value:.4g}"), "source": where + note}
    compute["threads"] = {"value": threads, "source": "the thread count the calibration ran with"}


def _calibrate_coding(data: dict[str, Any], repeats: int, server_here: bool) -> CodingFit:
    coding = fit_coding(measure_coding(repeats))
    coded = (
        f"calibrated by `split-opt calibrate` on {platform.node() or 'this machine'} on {dt.date.today()}: "
        f"each unit timed through the real codec at {coding.samples} sizes in all, fitted as call + count / rate "
        f"(rms relative error {coding.rms_relative_error:.1%})"
    )
    section = {key: {"value": float(f"{value:.4g}"), "source": coded} for key, value in sorted(coding.values.items())}
    # NOTE: keys this calibration does not measure (the context coder's) keep their values
    data["coding"] = {**data.get("coding", {}), **section}
    if server_here:
        # a copy: the same objects twice would be written as a YAML anchor and alias
        data["server"]["coding"] = {**data["server"].get("coding", {}), **copy.deepcopy(section)}
    return coding
