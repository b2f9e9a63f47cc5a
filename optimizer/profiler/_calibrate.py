"""Fit a profile's compute prices from latencies measured on the machine it describes (the full install).

Each segment of a few (model spec, input size) pairs is timed alone (optimizer/profiler/_measure.py,
on the real activations), and each head of those models (segments 1..k). Segments alone run with
their weights warm in the cache, heads stream the weights of every layer they hold, so both kinds
of run are measured. The fit (optimizer/profiler/_fit.py) is the one the device install's
``split-opt calibrate --kit`` uses too. A price whose work never occurs in the calibration models (no
grouped convolution in MobileNetV2) keeps the base profile's value and source.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from optimizer.config import DeviceProfile, load_yaml_mapping, parse_device_profile
from optimizer.models import build_model, split_graph
from optimizer.profiler._cache import spec_costs
from optimizer.profiler._coding import CodingFit, fit_coding, measure_coding
from optimizer.profiler._fit import MIN_CODING_REPEATS, Calibration, Run, fit_compute
from optimizer.profiler._fitted_profile import apply_coding_fit, apply_compute_fit, write_profile
from optimizer.profiler._measure import measure_heads, measure_segments

__all__ = ["calibrate_profile", "measure_samples"]


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
    (``clock``: optimizer/profiler/_timing.py; with one thread, the thread's CPU time)."""
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
    coding = None
    if "coding" in parts:
        coding = fit_coding(measure_coding(max(repeats, MIN_CODING_REPEATS)))
        apply_coding_fit(data, coding, server_here)
    return write_profile(data, out_path, name), fit, coding


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
