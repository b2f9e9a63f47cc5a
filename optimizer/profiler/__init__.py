"""Per-split MACs, memory, latency and energy of a model on a device profile; measurement and
calibration of the latency model."""

from __future__ import annotations

from optimizer.profiler._cache import cache_dir, model_costs
from optimizer.profiler._calibrate import Calibration, calibrate_profile, fit_compute, measure_samples
from optimizer.profiler._coding import CodingFit, fit_coding, measure_coding
from optimizer.profiler._costs import OP_CLASSES, BlockCost, LayerCost, ModelCosts, count_costs
from optimizer.profiler._latency import block_ms, energy_mj, send_ms, server_ms
from optimizer.profiler._measure import RUNTIMES, BlockTiming, compiled, fixed_threads, measure_blocks, time_ms
from optimizer.profiler._profile import profile_model
from optimizer.profiler._scaffold import profile_spec
from optimizer.profiler._table import CONVENTION, ModelProfile, SplitProfile, build_profile

__all__ = [
    "RUNTIMES",
    "CONVENTION",
    "OP_CLASSES",
    "BlockCost",
    "BlockTiming",
    "Calibration",
    "LayerCost",
    "ModelCosts",
    "ModelProfile",
    "SplitProfile",
    "block_ms",
    "build_profile",
    "cache_dir",
    "CodingFit",
    "calibrate_profile",
    "fit_coding",
    "measure_coding",
    "count_costs",
    "energy_mj",
    "fit_compute",
    "compiled",
    "fixed_threads",
    "measure_blocks",
    "measure_samples",
    "model_costs",
    "profile_model",
    "profile_spec",
    "send_ms",
    "server_ms",
    "time_ms",
]
