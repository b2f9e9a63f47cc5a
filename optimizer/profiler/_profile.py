"""``profile_model``: the split table of one model on one device profile."""

from __future__ import annotations

import functools

from optimizer.config import DeviceProfile
from optimizer.models import build_mobilenetv2, check_input_size, split_points
from optimizer.profiler._cache import model_costs
from optimizer.profiler._table import ModelProfile, build_profile

__all__ = ["profile_model"]


@functools.lru_cache(maxsize=256)
def profile_model(profile: DeviceProfile, alpha: float, input_size: int, num_classes: int = 10) -> ModelProfile:
    """Per-split MACs, memory, predicted latency and energy of MobileNetV2(alpha) at ``input_size``.

    Computed once per (device profile, model) in a process (the costs also persist on disk), so the
    search asks for it on every trial at no cost.
    """
    check_input_size(input_size)
    costs = model_costs(alpha, num_classes, input_size)
    points = split_points(build_mobilenetv2(alpha, num_classes), input_size)
    return build_profile(costs, profile, alpha, num_classes, [p.shape for p in points], [p.name for p in points])
