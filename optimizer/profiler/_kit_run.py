"""Time a calibration kit here and fit a profile (the device install: numpy, onnxruntime, no torch).

The same measurement as the full install's ``split-opt calibrate`` (optimizer/profiler/_calibrate.py
and _measure.py), on the kit's graphs: every segment alone (3 warm-up calls) on the real activation
before it, here the output of the previous segment's graph in ONNX Runtime; then every head
(2 warm-up calls) on the same image; each the lowest of ``rounds`` medians of ``repeats`` calls
(optimizer/profiler/_timing.py), in sessions set up as the full install's (``threads`` intra-op
threads, one inter-op thread). Unlike the full install, which holds every session of a model at
once, the device holds ``GROUP`` of them at a time (the rounds interleave within that group), so its
memory stays small. The image is standard normal noise (the values do not change the
time). Then the same fit (optimizer/profiler/_fit.py) on the kit's segment terms, the same coding
calibration (optimizer/profiler/_coding.py), and the same profile keys.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from optimizer.config import DeviceProfile, load_yaml_mapping, parse_device_profile
from optimizer.profiler._coding import CodingFit, fit_coding, measure_coding
from optimizer.profiler._fit import MIN_CODING_REPEATS, Calibration, Run, fit_compute
from optimizer.profiler._fitted_profile import apply_coding_fit, apply_compute_fit, write_profile
from optimizer.profiler._kit import Kit, KitError, KitModel
from optimizer.profiler._timing import BlockTiming, resolve_clock, time_many

__all__ = ["calibrate_from_kit", "kit_parts", "measure_kit"]

COMMAND = "split-opt calibrate --kit"
# sessions alive at once: every head of MobileNetV2 at 224 at once holds about 450 MB (each session its
# own weights and activation arena), a few at a time fit a small device; the statistic is unchanged
GROUP = 8


def _session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _image(model: KitModel, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(model.image_shape, dtype=np.float32)


def _time_graphs(
    paths: Sequence[Path], x: np.ndarray, chain: bool, threads: int, warmup: int, repeats: int, rounds: int
) -> list[BlockTiming]:
    """Each graph timed on ``x``; with ``chain``, each on the output of the graph before (segments).
    ``GROUP`` sessions at a time, the rounds interleaved within each group."""
    timings: list[BlockTiming] = []
    for start in range(0, len(paths), GROUP):
        calls: list[Callable[[], object]] = []
        for path in paths[start : start + GROUP]:
            session = _session(path, threads)
            feed = {"x": x}
            calls.append(partial(session.run, None, feed))
            if chain:
                x = session.run(None, feed)[0]
        timings += time_many(calls, warmup, repeats, rounds, resolve_clock("auto", threads))
    return timings


def measure_kit(kit: Kit, threads: int = 1, repeats: int = 15, rounds: int = 3) -> list[Run]:
    """Every segment alone and every head of every model of the kit, timed here."""
    out: list[Run] = []
    for model in kit.models:
        timings = _time_graphs(model.segment_graphs, _image(model), True, threads, 3, repeats, rounds)
        out.extend(Run([segment], t.median_ms) for segment, t in zip(model.segments, timings, strict=True))
        timings = _time_graphs(model.head_graphs, _image(model), False, threads, 2, repeats, rounds)
        out.extend(Run(model.segments[:k], t.median_ms, True) for k, t in enumerate(timings, start=1))
    return out


def kit_parts(kit: Kit, parts: Sequence[str] | None) -> tuple[str, ...]:
    """The parts to measure (default: the kit's); compute needs the kit's graphs, coding needs no file."""
    chosen = tuple(parts or kit.parts)
    if "compute" in chosen and ("compute" not in kit.parts or not kit.models):
        raise KitError(
            f"{kit.folder} holds no graphs to time (made with --parts {','.join(kit.parts)}): make the kit "
            "with --parts compute,coding, or give --parts coding here"
        )
    return chosen


def calibrate_from_kit(
    kit: Kit,
    base_path: Path,
    out_path: Path,
    threads: int = 1,
    name: str | None = None,
    repeats: int = 15,
    server_here: bool = False,
    parts: Sequence[str] | None = None,
) -> tuple[DeviceProfile, Calibration | None, CodingFit | None]:
    """Time the kit here, fit, and write ``base_path`` with its compute and/or coding sections
    replaced (``parts``: default the kit's), as ``split-opt calibrate`` writes them."""
    parts = kit_parts(kit, parts)
    data: dict[str, Any] = load_yaml_mapping(base_path)
    base = parse_device_profile(data, base_path)  # refuse to start from a broken profile
    fit = None
    if "compute" in parts:
        fit = fit_compute(measure_kit(kit, threads, repeats), base.memory.bytes_per_weight.value)
        models = [(m.spec, m.input_size) for m in kit.models]
        apply_compute_fit(data, fit, models, threads, "onnxruntime", COMMAND)
    coding = None
    if "coding" in parts:
        coding = fit_coding(measure_coding(max(repeats, MIN_CODING_REPEATS), kit.coding_seed))
        apply_coding_fit(data, coding, server_here, COMMAND)
    return write_profile(data, out_path, name), fit, coding
