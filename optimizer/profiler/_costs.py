"""What one fx segment of a model costs: its layers, element-wise work, parameters and memory.

Counting convention (stated once, used everywhere; fvcore's, as in optimizer.models.count_macs):

- **One multiply-add is one MAC.** Only convolutions (any groups), linear layers and matrix
  products count as MACs; fvcore counts them, one fused multiply-add as one.
- **BatchNorm is folded** into the convolution before it, as at inference: no work, and one bias
  per output channel in that convolution's parameters. Dropout, flatten and views are free.
- **Element-wise work is counted per operator**, in *ops*, never mixed into MACs: one op per
  output element for activations (ReLU, ReLU6, hardswish, SiLU, sigmoid, ...), additions and
  multiplications (residual adds, squeeze-excitation scaling) and concatenation; one op per
  element of the window for max- and average-pooling (output elements x kernel area); one op per
  input element for adaptive (global) pooling and means.
- **Parameters**: a convolution or linear layer has its weights plus one bias per output channel
  (its own or the folded BatchNorm's); other parameters and buffers count as they are (a
  BatchNorm that follows no convolution keeps its scale and shift).
- **Peak activation** is the most tensor elements alive at once while a segment runs, from the
  graph's liveness: a value lives from the node that makes it to its last user (a residual
  shortcut stays alive across its block, the input of a squeeze-excitation stays alive while its
  scale is computed); views share their input's storage; parameters are not activations.

Operator classes for the latency model (optimizer/profiler/_latency.py): a layer is *conv* (a dense
convolution with a kernel larger than 1x1), *depthwise* (one group per input channel), *grouped*
(1 < groups < input channels), or *pointwise* (1x1 dense convolutions, linear layers, functional
matrix products); element-wise operators fall into the classes of ``ELEMENTWISE_CLASSES``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = [
    "ELEMENTWISE_CLASSES",
    "ELEMENTWISE_OPERATORS",
    "OP_CLASSES",
    "LayerCost",
    "SegmentCost",
    "SpecCosts",
    "merge_segments",
]

OP_CLASSES = ("conv", "depthwise", "grouped", "pointwise")
# operator (aten name without namespace and in-place suffix) -> element-wise class
ELEMENTWISE_OPERATORS: dict[str, str] = {
    **dict.fromkeys(("relu", "hardtanh", "clamp", "leaky_relu", "relu6", "threshold"), "elementwise"),
    **dict.fromkeys(("add", "sub", "cat"), "elementwise"),
    **dict.fromkeys(("hardswish", "hardsigmoid"), "hardswish"),
    **dict.fromkeys(("sigmoid", "silu", "gelu", "tanh", "elu", "mish", "softmax", "log_softmax"), "sigmoid"),
    **dict.fromkeys(("mul", "div"), "mul"),
    **dict.fromkeys(("max_pool2d", "avg_pool2d"), "pool"),
    **dict.fromkeys(("adaptive_avg_pool2d", "adaptive_max_pool2d", "mean"), "global_pool"),
}
ELEMENTWISE_CLASSES = ("elementwise", "hardswish", "sigmoid", "mul", "pool", "global_pool")


@dataclass(frozen=True)
class LayerCost:
    """One convolution or linear layer (or the functional matrix products of a segment)."""

    name: str  # the module's qualified name; "" for functional matrix products
    op_class: str  # one of OP_CLASSES
    macs: int
    params: int  # weights plus one bias per output channel (BatchNorm folded)
    input_elements: int
    output_elements: int
    kernel: int = 1  # the kernel's height (1 for linear layers)
    stride: int = 1
    groups: int = 1


@dataclass(frozen=True)
class SegmentCost:
    """What runs between split k - 1 and split k.

    Attributes:
        k: the split the segment ends at (1 = the first segment).
        name: the split point's name (its fx node, ``logits`` for the last).
        shape: the shape of what it produces (batch dimension left out).
        layers: its convolutions and linear layers, in execution order.
        elementwise: element-wise ops per operator (``{"add": 802816, "hardswish": ...}``).
        other_params: parameters and buffers outside the layers (after BatchNorm folding).
        input_elements, output_elements: the activations it receives and produces.
        peak_elements: the most activation elements alive at once while it runs.
        uncounted: operators fvcore met that have no counting rule (their work is not counted).
    """

    k: int
    name: str
    shape: tuple[int, ...]
    layers: list[LayerCost]
    elementwise: dict[str, int]
    other_params: int
    input_elements: int
    output_elements: int
    peak_elements: int
    uncounted: list[str] = field(default_factory=list)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers) + self.other_params

    @property
    def elementwise_ops(self) -> int:
        return sum(self.elementwise.values())

    def macs_by_class(self) -> dict[str, int]:
        out = dict.fromkeys(OP_CLASSES, 0)
        for layer in self.layers:
            out[layer.op_class] += layer.macs
        return out

    def ops_by_class(self) -> dict[str, int]:
        """Element-wise ops per class of ``ELEMENTWISE_CLASSES`` (unknown operators: ``elementwise``)."""
        out = dict.fromkeys(ELEMENTWISE_CLASSES, 0)
        for op, count in self.elementwise.items():
            out[ELEMENTWISE_OPERATORS.get(op, "elementwise")] += count
        return out


@dataclass(frozen=True)
class SpecCosts:
    """Every segment of a model spec at one input size (segment k ends at split k, k = 1..last)."""

    spec: str
    num_classes: int
    input_size: int
    input_elements: int
    graph_hash: str
    segments: list[SegmentCost]

    @property
    def total_macs(self) -> int:
        return sum(s.macs for s in self.segments)


def merge_segments(k: int, name: str, parts: list[SegmentCost]) -> SegmentCost:
    """Consecutive segments as one (a MobileNetV2 block made of the fx segments inside it)."""
    elementwise: Counter[str] = Counter()
    for part in parts:
        elementwise.update(part.elementwise)
    return SegmentCost(
        k=k,
        name=name,
        shape=parts[-1].shape,
        layers=[layer for part in parts for layer in part.layers],
        elementwise=dict(elementwise),
        other_params=sum(p.other_params for p in parts),
        input_elements=parts[0].input_elements,
        output_elements=parts[-1].output_elements,
        peak_elements=max(p.peak_elements for p in parts),
        uncounted=sorted({op for p in parts for op in p.uncounted}),
    )
