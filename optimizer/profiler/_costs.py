"""Per-layer and per-block costs of a model at one input size: MACs, parameters, activations.

Counting convention (stated once, used everywhere):

- **One multiply-add is one MAC.** Only convolutions and fully-connected layers count as MACs,
  as in the published MobileNetV2 table; fvcore's counters do the counting.
- **BatchNorm is folded** into the preceding convolution, as at inference: it costs no MACs and
  adds one bias per output channel to that convolution's parameters.
- **Element-wise operations** (ReLU6, residual additions, the global average pool) are counted
  separately as *element-wise ops* (one per output element; the pool one per input element),
  never mixed into MACs.
- Convolutions are classed for the latency model: *depthwise* (one filter per channel),
  *pointwise* (1x1, and fully-connected layers) and *conv* (every other dense convolution).

Blocks are ``features[0..n-1]``; block n is the classifier stage (pooling + classifier), which
only the head of k = n + 1 runs.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn

with warnings.catch_warnings():  # fvcore touches torch.jit.script at import, which warns on new torch
    warnings.simplefilter("ignore", FutureWarning)
    from fvcore.nn import FlopCountAnalysis
    from fvcore.nn.jit_handles import elementwise_flop_counter

from optimizer.models import features_of

__all__ = ["OP_CLASSES", "BlockCost", "LayerCost", "ModelCosts", "count_costs"]

OP_CLASSES = ("conv", "depthwise", "pointwise")
_MAC_OPS = {"conv", "linear", "addmm", "matmul"}
_FOLDED_OPS = {"batch_norm", "dropout"}  # free at inference: folded into the conv / a no-op
_ELEMENTWISE_HANDLES = {
    "aten::hardtanh": elementwise_flop_counter(0, 1),
    "aten::hardtanh_": elementwise_flop_counter(0, 1),
    "aten::relu": elementwise_flop_counter(0, 1),
    "aten::relu_": elementwise_flop_counter(0, 1),
    "aten::add": elementwise_flop_counter(0, 1),
    "aten::add_": elementwise_flop_counter(0, 1),
    "aten::adaptive_avg_pool2d": elementwise_flop_counter(1, 0),
}


@dataclass(frozen=True)
class LayerCost:
    """One convolution or fully-connected layer."""

    name: str
    block: int
    op_class: str
    macs: int
    params: int  # weights plus one bias per output channel (BatchNorm folded)
    input_elements: int
    output_elements: int


@dataclass(frozen=True)
class BlockCost:
    """One block of the body (or the classifier stage, index n)."""

    index: int
    name: str
    layers: list[LayerCost]
    elementwise_ops: int
    input_elements: int
    output_elements: int
    peak_elements: int  # the most activation elements alive at once while the block runs

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    def macs_by_class(self) -> dict[str, int]:
        out = dict.fromkeys(OP_CLASSES, 0)
        for layer in self.layers:
            out[layer.op_class] += layer.macs
        return out


@dataclass(frozen=True)
class ModelCosts:
    input_size: int
    input_elements: int
    blocks: list[BlockCost] = field(default_factory=list)

    @property
    def total_macs(self) -> int:
        return sum(b.macs for b in self.blocks)


def _op_class(module: nn.Module) -> str:
    if isinstance(module, nn.Linear):
        return "pointwise"
    assert isinstance(module, nn.Conv2d)
    if module.groups > 1 and module.groups == module.in_channels:
        return "depthwise"
    return "pointwise" if module.kernel_size == (1, 1) and module.groups == 1 else "conv"


def _folded_params(module: nn.Conv2d | nn.Linear) -> int:
    out_channels = module.out_channels if isinstance(module, nn.Conv2d) else module.out_features
    return module.weight.numel() + out_channels  # a bias per output channel: its own or the folded BatchNorm


def _block_of(name: str, n: int) -> int:
    parts = name.split(".")
    return int(parts[1]) if parts[0] == "features" else n


def _shapes(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[int, int]]:
    """(input elements, output elements) of every conv/linear layer, from one forward pass."""
    seen: dict[str, tuple[int, int]] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            hooks.append(
                module.register_forward_hook(
                    lambda m, i, o, name=name: seen.__setitem__(name, (i[0][0].numel(), o[0].numel()))
                )
            )
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    return seen


def _analysis(model: nn.Module, x: torch.Tensor) -> FlopCountAnalysis:
    analysis = FlopCountAnalysis(model, x).set_op_handle(**_ELEMENTWISE_HANDLES)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    return analysis


def _peak(block: nn.Module, layers: list[LayerCost], block_input: int) -> int:
    """Live elements at the worst moment: a layer's input and output, plus the block's input
    while a residual connection still needs it."""
    keeps_input = bool(getattr(block, "use_res_connect", False))
    peak = block_input
    for i, layer in enumerate(layers):
        held = block_input if keeps_input and i > 0 else 0
        peak = max(peak, layer.input_elements + layer.output_elements + held)
    return peak


@functools.lru_cache(maxsize=64)
def _count_cached(alpha: float, num_classes: int, input_size: int) -> ModelCosts:
    from optimizer.models import build_mobilenetv2

    return count_costs(build_mobilenetv2(alpha, num_classes), input_size)


def count_costs(model: nn.Module, input_size: int) -> ModelCosts:
    """Costs of every block of ``model`` (eval mode) at a square input size."""
    model = model.eval()
    x = torch.zeros(1, 3, input_size, input_size)
    shapes = _shapes(model, x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = _analysis(model, x)
        by_module = analysis.by_module_and_operator()
    features = features_of(model)
    n = len(features)
    layers: list[list[LayerCost]] = [[] for _ in range(n + 1)]
    for name, module in model.named_modules():
        if name in shapes and isinstance(module, nn.Conv2d | nn.Linear):
            macs = sum(c for op, c in by_module.get(name, {}).items() if op in _MAC_OPS)
            block = _block_of(name, n)
            cost = LayerCost(name, block, _op_class(module), int(macs), _folded_params(module), *shapes[name])
            layers[block].append(cost)
    return _assemble(model, features, layers, by_module, input_size)


def _elementwise(counter: dict[str, int]) -> int:
    return int(sum(c for op, c in counter.items() if op not in _MAC_OPS | _FOLDED_OPS))


def _assemble(
    model: nn.Module, features: nn.Sequential, layers: list[list[LayerCost]], by_module: dict, input_size: int
) -> ModelCosts:
    n = len(features)
    blocks: list[BlockCost] = []
    current = 3 * input_size * input_size
    for i, block in enumerate(features):
        out = layers[i][-1].output_elements
        blocks.append(
            BlockCost(
                i,
                f"features.{i}",
                layers[i],
                _elementwise(by_module.get(f"features.{i}", {})),
                current,
                out,
                _peak(block, layers[i], current),
            )
        )
        current = out
    body_elementwise = sum(b.elementwise_ops for b in blocks)
    head_elementwise = _elementwise(by_module.get("", {})) - body_elementwise
    cls = layers[n]
    blocks.append(
        BlockCost(
            n,
            "classifier",
            cls,
            head_elementwise,
            current,
            cls[-1].output_elements,
            max(current, max(c.input_elements + c.output_elements for c in cls)),
        )
    )
    return ModelCosts(input_size, 3 * input_size * input_size, blocks)
