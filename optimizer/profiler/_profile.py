"""``profile_spec``: the split table of any model spec on one device profile (and the deprecated
MobileNetV2 block-numbered ``profile_model`` on top of it)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

from optimizer.config import DeviceProfile
from optimizer.models import FAMILY, ModelSpec, build_model, parse_model_spec, specs_from_family, split_graph
from optimizer.profiler._cache import spec_costs, traced
from optimizer.profiler._costs import SegmentCost, SpecCosts, merge_segments
from optimizer.profiler._table import ModelProfile, build_profile

__all__ = ["BlockCosts", "clear_memory_caches", "model_costs", "profile_model", "profile_spec"]


@functools.lru_cache(maxsize=1024)
def profile_spec(device: DeviceProfile, spec: str | ModelSpec, input_size: int, num_classes: int = 10) -> ModelProfile:
    """Per-split MACs, memory, predicted latency and energy of a model spec at ``input_size``: one row
    per split k of ``split_graph(spec).points(input_size)`` (same k, same names, same cumulative MACs).

    Costs are counted once per (spec, classes, size) and kept on disk; the table is kept per device
    in the process, so the search asks for it on every trial at no cost.
    """
    costs = spec_costs(str(parse_model_spec(spec)), num_classes, input_size)
    names = ["input", *(s.name for s in costs.segments)]
    return _model_profile(device, costs, costs.segments, names)


def _model_profile(
    device: DeviceProfile, costs: SpecCosts, segments: list[SegmentCost], names: list[str]
) -> ModelProfile:
    parsed = parse_model_spec(costs.spec)
    channels = costs.input_elements // (costs.input_size * costs.input_size)
    rows = build_profile(segments, (channels, costs.input_size, costs.input_size), names, device)
    return ModelProfile(
        device.name,
        device.path,
        costs.spec,
        parsed.family,
        dict(parsed.values),
        costs.input_size,
        costs.num_classes,
        costs.total_macs,
        rows,
    )


@dataclass(frozen=True)
class BlockCosts:
    """Deprecated: MobileNetV2's costs per block (``blocks[i]`` is ``features[i]``, the last the classifier)."""

    input_size: int
    input_elements: int
    blocks: list[SegmentCost]

    @property
    def total_macs(self) -> int:
        return sum(b.macs for b in self.blocks)


def _legacy_spec(alpha: float) -> str:
    return str(specs_from_family(FAMILY, [alpha])[0])


@functools.lru_cache(maxsize=64)
def _block_ks(spec: str, num_classes: int) -> tuple[int, ...]:
    """The fx ks of the block outputs (docs/models.md): 0, features[0..n-1], the logits."""
    model = build_model(spec, num_classes)
    graph = split_graph(spec, model)
    blocks = sum(1 for _ in model.get_submodule("features").children())
    return (0, *graph.select([f"features.{i}" for i in range(blocks)]), len(graph) - 1)


def _blocks(costs: SpecCosts, ks: tuple[int, ...]) -> list[SegmentCost]:
    names = [f"features.{i}" for i in range(len(ks) - 2)] + ["classifier"]
    return [
        merge_segments(j, names[j - 1], costs.segments[ks[j - 1] : ks[j]])  # segments ks[j-1]+1 .. ks[j]
        for j in range(1, len(ks))
    ]


def model_costs(alpha: float, num_classes: int, input_size: int) -> BlockCosts:
    """Deprecated (the lead removes it with its callers' block numbering): MobileNetV2(alpha)'s costs
    per block, merged from the fx segments; use ``spec_costs`` (per fx segment) instead."""
    spec = _legacy_spec(alpha)
    costs = spec_costs(spec, num_classes, input_size)
    return BlockCosts(input_size, costs.input_elements, _blocks(costs, _block_ks(spec, num_classes)))


@functools.lru_cache(maxsize=256)
def profile_model(profile: DeviceProfile, alpha: float, input_size: int, num_classes: int = 10) -> ModelProfile:
    """Deprecated (the lead removes it with its callers' block numbering): the split table of
    MobileNetV2(alpha) in the block numbering k = 0..n+1 (k = i + 1 sends ``features[i]``): the rows of
    :func:`profile_spec` at the fx splits of the block outputs, with ``macs`` the differences of
    ``cum_macs``. Use ``profile_spec``."""
    spec = _legacy_spec(alpha)
    fx = profile_spec(profile, spec, input_size, num_classes)
    ks = _block_ks(spec, num_classes)
    names = ["input", *(f"features.{i}" for i in range(len(ks) - 2)), "logits"]
    rows = []
    for k, (fx_k, name) in enumerate(zip(ks, names, strict=True)):
        row = fx.splits[fx_k]
        macs = row.cum_macs - fx.splits[ks[k - 1]].cum_macs if k else 0
        rows.append(replace(row, k=k, name=name, macs=macs))
    return replace(fx, splits=rows, numbering="block")


def clear_memory_caches() -> None:
    """Forget what this process counted, traced and tabled (the disk cache stays)."""
    profile_spec.cache_clear()
    profile_model.cache_clear()
    _block_ks.cache_clear()
    spec_costs.cache_clear()
    traced.cache_clear()
