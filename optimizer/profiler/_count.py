"""Counting one fx segment: fvcore over the segment for MACs (per layer) and element-wise ops (per
operator, with the handles below), forward hooks for the layers' activation sizes, and the graph's
liveness for the peak (optimizer/profiler/_liveness.py). The convention is in _costs.py.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Callable
from typing import Any

import torch
from torch import fx, nn

with warnings.catch_warnings():  # fvcore touches torch.jit.script at import, which warns on new torch
    warnings.simplefilter("ignore", FutureWarning)
    from fvcore.nn import FlopCountAnalysis
    from fvcore.nn.jit_handles import get_shape

from optimizer.models import MAC_OPERATORS
from optimizer.profiler._costs import ELEMENTWISE_OPERATORS, LayerCost

__all__ = ["count_segment", "count_segments", "layer_class"]

SegmentCount = tuple[list[LayerCost], dict[str, int], int, list[str]]

_BATCH_NORM = nn.modules.batchnorm._BatchNorm
_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_PER_INPUT = frozenset({"adaptive_avg_pool2d", "adaptive_max_pool2d", "mean"})
_WINDOWED = frozenset({"max_pool2d", "avg_pool2d"})


def _elements(value: Any) -> int:
    shape = get_shape(value)
    return math.prod(shape) if shape is not None else 0


def _int_list(value: Any) -> list[int]:
    """A list-of-ints argument of a traced op (a constant, or a ListConstruct of constants)."""
    constant = value.toIValue()
    if constant is None and value.node().kind() == "prim::ListConstruct":
        constant = [v.toIValue() for v in value.node().inputs()]
    items = constant if isinstance(constant, list | tuple) else [constant]
    return [int(v) for v in items if v is not None] or [1]


def _handle(op: str) -> Callable[[list[Any], list[Any]], Counter[str]]:
    """fvcore handle for one element-wise operator, counting by the convention's rule for it."""

    def count(inputs: list[Any], outputs: list[Any]) -> Counter[str]:
        if op in _PER_INPUT:
            return Counter({op: _elements(inputs[0])})
        if op in _WINDOWED:
            kernel = _int_list(inputs[1])
            return Counter({op: _elements(outputs[0]) * math.prod(kernel * (2 // len(kernel)))})
        return Counter({op: _elements(outputs[0])})

    return count


_HANDLES: dict[str, Any] = {
    f"aten::{op}{suffix}": _handle(op) for op in ELEMENTWISE_OPERATORS for suffix in ("", "_")
} | {"aten::dropout_": None, "aten::feature_dropout": None, "aten::feature_dropout_": None}  # no-ops at inference
_FOLDED = frozenset({"batch_norm"})  # into the convolution before it


def layer_class(module: nn.Module) -> str:
    """The latency model's class of a convolution or linear layer."""
    if isinstance(module, nn.Linear):
        return "pointwise"
    assert isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d)
    if module.groups > 1:
        return "depthwise" if module.groups == module.in_channels else "grouped"
    return "pointwise" if math.prod(module.kernel_size) == 1 else "conv"


def _folded_params(module: nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Linear) -> int:
    out_channels = module.out_features if isinstance(module, nn.Linear) else module.out_channels
    return int(module.weight.numel()) + int(out_channels)


def _sizes(segment: nn.Module, x: torch.Tensor) -> dict[str, tuple[int, int]]:
    """(input elements, output elements) of every conv/linear layer, from one forward."""
    seen: dict[str, tuple[int, int]] = {}
    hooks = [
        module.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, (i[0].numel(), o.numel())))
        for name, module in segment.named_modules()
        if isinstance(module, _WEIGHTED)
    ]
    try:
        with torch.no_grad():
            segment(x)
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def _analysis(segment: nn.Module, x: torch.Tensor) -> FlopCountAnalysis:
    analysis = FlopCountAnalysis(segment, x).set_op_handle(**_HANDLES)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    return analysis


def _layers(
    segment: nn.Module, by_module: dict[str, Counter[str]], sizes: dict[str, tuple[int, int]]
) -> list[LayerCost]:
    layers = []
    for name, module in segment.named_modules():
        if name not in sizes or not isinstance(module, _WEIGHTED):
            continue
        macs = sum(c for op, c in by_module.get(name, Counter()).items() if op in MAC_OPERATORS)
        shape = (1, 1, 1) if isinstance(module, nn.Linear) else (module.kernel_size[0], module.stride[0], module.groups)
        layers.append(
            LayerCost(name, layer_class(module), int(macs), _folded_params(module), *sizes[name], *map(int, shape))
        )
    return layers


def _other_params(segment: fx.GraphModule, layer_names: set[str]) -> int:
    """Parameters and buffers outside the conv/linear layers, BatchNorm after a convolution folded."""
    total = 0
    for node in segment.graph.nodes:
        if node.op == "get_attr":
            value = _attr(segment, str(node.target))
            total += value.numel() if isinstance(value, torch.Tensor) else 0
        elif node.op == "call_module" and str(node.target) not in layer_names:
            module = segment.get_submodule(str(node.target))
            if isinstance(module, _BATCH_NORM) and _after_conv(segment, node):
                continue
            total += _own_params(module)
    return total


def _own_params(module: nn.Module) -> int:
    """Parameters of a module and its children, less the conv/linear layers inside (counted as layers)."""
    total = 0
    for sub in module.modules():
        if not isinstance(sub, _WEIGHTED):
            total += sum(t.numel() for t in sub.parameters(recurse=False)) + _running_stats(sub)
    return total


def _attr(module: nn.Module, target: str) -> Any:
    for part in target.split("."):
        module = getattr(module, part)
    return module


def _after_conv(segment: fx.GraphModule, node: fx.Node) -> bool:
    source = node.args[0] if node.args else None
    return (
        isinstance(source, fx.Node)
        and source.op == "call_module"
        and isinstance(segment.get_submodule(str(source.target)), nn.Conv1d | nn.Conv2d | nn.Conv3d)
    )


def _running_stats(module: nn.Module) -> int:
    """An unfolded BatchNorm at inference is a scale and a shift: its running statistics are buffers
    that fold into those two, so they add nothing beyond the affine parameters (or 2 C without them)."""
    if isinstance(module, _BATCH_NORM) and not module.affine:
        return 2 * module.num_features
    return 0


def count_segment(segment: nn.Module, x: torch.Tensor) -> SegmentCount:
    """Layers, element-wise ops per operator, other parameters and uncounted operators of one segment
    run on ``x`` (a batch of one)."""
    sizes = _sizes(segment, x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = _analysis(segment, x)
        by_module = analysis.by_module_and_operator()
        uncounted = sorted(analysis.unsupported_ops())
    return _tally(segment, by_module, sizes, uncounted)


def count_segments(segments: list[nn.Module], x: torch.Tensor) -> list[SegmentCount]:
    """:func:`count_segment` of every segment of a chain (segment i + 1 takes segment i's output), from
    one fvcore trace of the whole chain: each segment is a scope of its own, so per-segment figures
    are the same as counting each alone (tests/test_profiler.py checks), at a fraction of the cost
    (fvcore's per-call tracing overhead dominates small segments). Segments that share a module
    object would blur the scopes, so they are counted one by one."""
    ids = [id(m) for seg in segments for m in seg.modules()]
    if len(ids) != len(set(ids)):
        counts, value = [], x
        for seg in segments:
            counts.append(count_segment(seg, value))
            with torch.no_grad():
                value = seg(value)
        return counts
    chain = nn.Sequential(*segments)
    sizes = _sizes(chain, x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = _analysis(chain, x)
        by_module = analysis.by_module_and_operator()
        uncounted = [sorted(analysis.unsupported_ops(str(i))) for i in range(len(segments))]
    return [
        _tally(seg, _scoped(by_module, str(i)), _scoped(sizes, str(i)), uncounted[i]) for i, seg in enumerate(segments)
    ]


def _scoped(by_name: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The entries under module ``prefix`` of a chain, renamed as the segment alone names them."""
    out = {name[len(prefix) + 1 :]: value for name, value in by_name.items() if name.startswith(prefix + ".")}
    if prefix in by_name:
        out[""] = by_name[prefix]
    return out


def _tally(
    segment: nn.Module, by_module: dict[str, Counter[str]], sizes: dict[str, tuple[int, int]], uncounted: list[str]
) -> SegmentCount:
    assert isinstance(segment, fx.GraphModule)
    layers = _layers(segment, by_module, sizes)
    total = by_module.get("", Counter())
    functional = sum(c for op, c in total.items() if op in MAC_OPERATORS) - sum(layer.macs for layer in layers)
    if functional > 0:  # matrix products written as functions (attention): dense, like a linear layer
        layers.append(LayerCost("", "pointwise", int(functional), 0, 0, 0))
    elementwise: Counter[str] = Counter()
    for op, count in total.items():
        if op not in MAC_OPERATORS | _FOLDED:
            elementwise[op.rstrip("_")] += int(count)
    return layers, dict(elementwise), _other_params(segment, {layer.name for layer in layers}), uncounted
