"""Per-split MACs, memory, latency and energy of any model spec on a device profile, per fx
segment; measurement and calibration of the latency model.

Names load lazily (PEP 562): ``from optimizer.profiler import fit_compute`` imports only the module
that defines it, so the device install (no torch, no fvcore) can import the torch-free modules
(``_kit``, ``_kit_run``, ``_fit``, ``_coding``, ``_latency``, ...) to run a calibration kit, while
counting and measuring (``_cache``, ``_measure``, ``_calibrate``, ``_kit_make``) need the full install.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optimizer.profiler._cache import CACHE_VERSION, cache_dir, count_graph, count_spec, graph_hash, spec_costs
    from optimizer.profiler._calibrate import calibrate_profile, measure_samples
    from optimizer.profiler._coding import CodingFit, fit_coding, measure_coding
    from optimizer.profiler._costs import (
        ELEMENTWISE_CLASSES,
        ELEMENTWISE_OPERATORS,
        OP_CLASSES,
        LayerCost,
        SegmentCost,
        SpecCosts,
        merge_segments,
    )
    from optimizer.profiler._fit import (
        CACHE_GRID,
        MIN_CODING_REPEATS,
        UNMEASURABLE,
        Calibration,
        Run,
        fit_compute,
        sample_terms,
    )
    from optimizer.profiler._fitted_profile import apply_coding_fit, apply_compute_fit, write_profile
    from optimizer.profiler._kit import KIT_FORMAT, KIT_MANIFEST, Kit, KitError, KitModel, open_kit
    from optimizer.profiler._kit_make import make_kit
    from optimizer.profiler._kit_run import calibrate_from_kit, kit_parts, measure_kit
    from optimizer.profiler._latency import COMPUTE_KEYS, PRICE_KEYS, energy_mj, head_ms, segment_ms, send_ms, server_ms
    from optimizer.profiler._measure import compiled, fixed_threads, measure_heads, measure_segments, time_many, time_ms
    from optimizer.profiler._profile import BlockCosts, clear_memory_caches, model_costs, profile_model, profile_spec
    from optimizer.profiler._table import CONVENTION, ModelProfile, SplitProfile, build_profile
    from optimizer.profiler._timing import CLOCKS, RUNTIMES, BlockTiming, resolve_clock

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "CACHE_VERSION": "_cache",
    "cache_dir": "_cache",
    "count_graph": "_cache",
    "count_spec": "_cache",
    "graph_hash": "_cache",
    "spec_costs": "_cache",
    "calibrate_profile": "_calibrate",
    "measure_samples": "_calibrate",
    "CodingFit": "_coding",
    "fit_coding": "_coding",
    "measure_coding": "_coding",
    "ELEMENTWISE_CLASSES": "_costs",
    "ELEMENTWISE_OPERATORS": "_costs",
    "OP_CLASSES": "_costs",
    "LayerCost": "_costs",
    "merge_segments": "_costs",
    "SegmentCost": "_costs",
    "SpecCosts": "_costs",
    "CACHE_GRID": "_fit",
    "MIN_CODING_REPEATS": "_fit",
    "UNMEASURABLE": "_fit",
    "Calibration": "_fit",
    "fit_compute": "_fit",
    "Run": "_fit",
    "sample_terms": "_fit",
    "apply_coding_fit": "_fitted_profile",
    "apply_compute_fit": "_fitted_profile",
    "write_profile": "_fitted_profile",
    "KIT_FORMAT": "_kit",
    "KIT_MANIFEST": "_kit",
    "Kit": "_kit",
    "KitError": "_kit",
    "KitModel": "_kit",
    "open_kit": "_kit",
    "make_kit": "_kit_make",
    "calibrate_from_kit": "_kit_run",
    "kit_parts": "_kit_run",
    "measure_kit": "_kit_run",
    "COMPUTE_KEYS": "_latency",
    "PRICE_KEYS": "_latency",
    "energy_mj": "_latency",
    "head_ms": "_latency",
    "segment_ms": "_latency",
    "send_ms": "_latency",
    "server_ms": "_latency",
    "RUNTIMES": "_timing",
    "CLOCKS": "_timing",
    "resolve_clock": "_timing",
    "compiled": "_measure",
    "fixed_threads": "_measure",
    "measure_heads": "_measure",
    "measure_segments": "_measure",
    "time_many": "_measure",
    "time_ms": "_measure",
    "BlockCosts": "_profile",
    "clear_memory_caches": "_profile",
    "model_costs": "_profile",
    "profile_model": "_profile",
    "profile_spec": "_profile",
    "CONVENTION": "_table",
    "build_profile": "_table",
    "ModelProfile": "_table",
    "SplitProfile": "_table",
    "BlockTiming": "_timing",
}
__all__ = [
    "CACHE_GRID",
    "CACHE_VERSION",
    "CLOCKS",
    "COMPUTE_KEYS",
    "CONVENTION",
    "ELEMENTWISE_CLASSES",
    "ELEMENTWISE_OPERATORS",
    "KIT_FORMAT",
    "KIT_MANIFEST",
    "MIN_CODING_REPEATS",
    "OP_CLASSES",
    "PRICE_KEYS",
    "RUNTIMES",
    "UNMEASURABLE",
    "BlockCosts",
    "BlockTiming",
    "Calibration",
    "CodingFit",
    "Kit",
    "KitError",
    "KitModel",
    "LayerCost",
    "ModelProfile",
    "Run",
    "SegmentCost",
    "SpecCosts",
    "SplitProfile",
    "apply_coding_fit",
    "apply_compute_fit",
    "build_profile",
    "cache_dir",
    "calibrate_from_kit",
    "kit_parts",
    "calibrate_profile",
    "clear_memory_caches",
    "compiled",
    "count_graph",
    "count_spec",
    "energy_mj",
    "fit_coding",
    "fit_compute",
    "fixed_threads",
    "graph_hash",
    "head_ms",
    "make_kit",
    "measure_coding",
    "measure_heads",
    "measure_kit",
    "measure_samples",
    "measure_segments",
    "merge_segments",
    "model_costs",
    "open_kit",
    "profile_model",
    "profile_spec",
    "resolve_clock",
    "sample_terms",
    "segment_ms",
    "send_ms",
    "server_ms",
    "spec_costs",
    "time_many",
    "time_ms",
    "write_profile",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # the next look-up is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
