"""Fit a profile's compute throughputs from latencies measured on the machine it describes.

Each measured block gives one equation ``ms = sum_c macs_c / throughput_c + ops / elementwise
+ layers * overhead``; a non-negative least-squares fit (Lawson and Hanson's active-set NNLS, in
numpy below) over every block of a few models yields the five unknowns. A zero coefficient means
the fit found no measurable cost per MAC for that class (its time is explained by the other
terms); the class then gets a throughput so high that it adds nothing, so predictions equal the
fitted model. Keeping the input profile's value instead would add time the fit already attributed
elsewhere.
"""

from __future__ import annotations

import copy
import datetime as dt
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from optimizer.config import DeviceProfile, load_yaml_mapping, parse_device_profile
from optimizer.models import build_mobilenetv2
from optimizer.profiler._cache import model_costs
from optimizer.profiler._coding import CodingFit, fit_coding, measure_coding
from optimizer.profiler._costs import OP_CLASSES, BlockCost
from optimizer.profiler._measure import measure_blocks
from optimizer.profiler._nnls import nnls

__all__ = ["Calibration", "calibrate_profile", "fit_compute", "measure_samples"]

# Column scale: coefficients come out in ms per million MACs (or ops) and ms per layer.
_SCALE = 1e6
UNMEASURABLE = 1e15  # per second: no measurable cost per MAC at this machine's timer resolution
_KEYS = ("conv_macs_per_s", "depthwise_macs_per_s", "pointwise_macs_per_s", "elementwise_ops_per_s")


@dataclass(frozen=True)
class Calibration:
    values: dict[str, float]  # compute key -> fitted value (UNMEASURABLE where the coefficient is 0)
    residual_ms: float
    samples: int


def _row(block: BlockCost) -> list[float]:
    by_class = block.macs_by_class()
    return [*(by_class[c] / _SCALE for c in OP_CLASSES), block.elementwise_ops / _SCALE, float(len(block.layers))]


def fit_compute(samples: Sequence[tuple[BlockCost, float]]) -> Calibration:
    """Throughputs (per second) and per-layer overhead (ms) that best explain the block times."""
    a = np.array([_row(block) for block, _ in samples])
    b = np.array([ms for _, ms in samples])
    coef, residual = nnls(a, b)
    values = {key: _SCALE * 1e3 / c if c > 0 else UNMEASURABLE for key, c in zip(_KEYS, coef[:4], strict=True)}
    values["layer_overhead_ms"] = float(coef[4])
    return Calibration(values, float(residual / np.sqrt(len(b))), len(b))


def measure_samples(
    models: Sequence[tuple[float, int]],
    threads: int,
    repeats: int = 15,
    num_classes: int = 10,
    runtime: str = "onnxruntime",
) -> list[tuple[BlockCost, float]]:
    """(block cost, measured median ms) for every block of every (alpha, input size)."""
    out: list[tuple[BlockCost, float]] = []
    for alpha, size in models:
        model = build_mobilenetv2(alpha, num_classes)
        timings = measure_blocks(model, size, threads, repeats=repeats, runtime=runtime)
        blocks = model_costs(alpha, num_classes, size).blocks
        out.extend((block, t.median_ms) for block, t in zip(blocks, timings, strict=True))
    return out


def calibrate_profile(
    base_path: Path,
    out_path: Path,
    models: Sequence[tuple[float, int]],
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
    parse_device_profile(data, base_path)  # refuse to start from a broken profile
    fit = _calibrate_compute(data, models, threads, repeats, runtime) if "compute" in parts else None
    coding = _calibrate_coding(data, max(repeats, 25), server_here) if "coding" in parts else None
    if name:
        data["name"] = name
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(yaml.safe_dump(data, sort_keys=False, width=100))
    return parse_device_profile(load_yaml_mapping(out_path), out_path), fit, coding


def _calibrate_compute(
    data: dict[str, Any], models: Sequence[tuple[float, int]], threads: int, repeats: int, runtime: str
) -> Calibration:
    fit = fit_compute(measure_samples(models, threads, repeats, runtime=runtime))
    where = (
        f"calibrated by `split-opt calibrate` on {platform.node() or 'this machine'} "
        f"({platform.machine()}, {platform.processor() or 'cpu'}) on {dt.date.today()}, "
        f"{runtime}, {threads} thread(s), models {', '.join(f'{a:g}/{s}' for a, s in models)}, "
        f"{fit.samples} blocks, rms residual {fit.residual_ms:.3f} ms"
    )
    compute = data["compute"]
    for key in (*_KEYS, "layer_overhead_ms"):
        note = " (fit coefficient 0: no measurable cost per MAC)" if fit.values[key] == UNMEASURABLE else ""
        compute[key] = {"value": float(f"{fit.values[key]:.4g}"), "source": where + note}
    compute["threads"] = {"value": threads, "source": "the thread count the calibration ran with"}
    return fit


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
