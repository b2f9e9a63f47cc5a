"""Per-split MACs, memory, latency and energy of any model spec on a device profile, per fx
segment; measurement and calibration of the latency model."""

from __future__ import annotations

from optimizer.profiler._cache import (
    CACHE_VERSION,
    cache_dir,
    count_graph,
    count_spec,
    graph_hash,
    spec_costs,
)
from optimizer.profiler._calibrate import (
    UNMEASURABLE,
    Calibration,
    Run,
    apply_compute_fit,
    calibrate_profile,
    fit_compute,
    measure_samples,
    sample_terms,
)
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
from optimizer.profiler._latency import COMPUTE_KEYS, energy_mj, head_ms, segment_ms, send_ms, server_ms
from optimizer.profiler._measure import (
    CLOCKS,
    RUNTIMES,
    BlockTiming,
    compiled,
    fixed_threads,
    measure_heads,
    measure_segments,
    resolve_clock,
    time_many,
    time_ms,
)
from optimizer.profiler._profile import BlockCosts, clear_memory_caches, model_costs, profile_model, profile_spec
from optimizer.profiler._table import CONVENTION, ModelProfile, SplitProfile, build_profile

__all__ = [
    "CACHE_VERSION",
    "CLOCKS",
    "COMPUTE_KEYS",
    "CONVENTION",
    "ELEMENTWISE_CLASSES",
    "ELEMENTWISE_OPERATORS",
    "OP_CLASSES",
    "RUNTIMES",
    "Run",
    "UNMEASURABLE",
    "BlockCosts",
    "BlockTiming",
    "LayerCost",
    "ModelProfile",
    "SegmentCost",
    "SpecCosts",
    "SplitProfile",
    "Calibration",
    "CodingFit",
    "apply_compute_fit",
    "build_profile",
    "calibrate_profile",
    "fit_coding",
    "fit_compute",
    "measure_coding",
    "measure_samples",
    "sample_terms",
    "cache_dir",
    "clear_memory_caches",
    "compiled",
    "count_graph",
    "count_spec",
    "energy_mj",
    "fixed_threads",
    "graph_hash",
    "head_ms",
    "measure_heads",
    "measure_segments",
    "merge_segments",
    "model_costs",
    "profile_model",
    "profile_spec",
    "resolve_clock",
    "segment_ms",
    "send_ms",
    "server_ms",
    "spec_costs",
    "time_many",
    "time_ms",
]
