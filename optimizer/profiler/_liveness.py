"""Peak live activation elements per segment, from a traced graph's liveness.

A value is alive from the node that makes it to its last user, inclusive: a node's inputs are
still alive while it runs, next to its output. Views (flatten, reshape, dropout and identity at
inference) share their input's storage, so they extend its life instead of adding a value; so do
BatchNorm (folded at inference) and activations whose input nothing else reads (they run in place,
as ONNX Runtime and PyTorch run them).
Parameters and buffers are weights, not activations. The graph must carry shapes (ShapeProp at the
input size in question).
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import TensorMetadata

__all__ = ["segment_peaks"]

_VIEW_MODULES = (nn.Flatten, nn.Unflatten, nn.Identity, nn.Dropout, nn.Dropout2d, nn.Dropout1d, nn.AlphaDropout)
_VIEW_FUNCTIONS = {torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze, nn.functional.dropout}
_VIEW_METHODS = {"view", "reshape", "flatten", "squeeze", "unsqueeze", "contiguous", "view_as", "reshape_as"}
# unary element-wise layers: run in place when nothing else reads their input (BatchNorm is folded)
_IN_PLACE_MODULES = (
    nn.modules.batchnorm._BatchNorm,
    nn.ReLU,
    nn.ReLU6,
    nn.Hardtanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.SiLU,
    nn.Sigmoid,
    nn.GELU,
    nn.Tanh,
    nn.LeakyReLU,
    nn.ELU,
    nn.Mish,
)
_IN_PLACE_FUNCTIONS = {"relu", "relu6", "hardtanh", "hardswish", "hardsigmoid", "silu", "sigmoid", "gelu", "tanh"}
# NOTE: getitem and slicing are not views here: the runtimes that run heads (ONNX Slice) copy them


def _is_view(gm: fx.GraphModule, node: fx.Node) -> bool:
    """A view of its input, or an in-place overwrite of an input nothing else reads."""
    if not node.args or not isinstance(node.args[0], fx.Node):
        return False
    sole_user = len(node.args[0].users) == 1
    if node.op == "call_module":
        module = gm.get_submodule(str(node.target))
        return isinstance(module, _VIEW_MODULES) or (sole_user and isinstance(module, _IN_PLACE_MODULES))
    if node.op == "call_function":
        return node.target in _VIEW_FUNCTIONS or (sole_user and _name(node.target) in _IN_PLACE_FUNCTIONS)
    if node.op == "call_method":
        return node.target in _VIEW_METHODS or (sole_user and _name(node.target) in _IN_PLACE_FUNCTIONS)
    return False


def _name(target: object) -> str:
    return (target if isinstance(target, str) else getattr(target, "__name__", "")).rstrip("_")


def _elements(node: fx.Node) -> int:
    meta = node.meta.get("tensor_meta")
    return math.prod(meta.shape) if isinstance(meta, TensorMetadata) else 0


def _live_per_node(gm: fx.GraphModule, nodes: list[fx.Node]) -> list[int]:
    """Elements alive while each node runs."""
    order = {n: i for i, n in enumerate(nodes)}
    root: dict[fx.Node, fx.Node] = {}
    last: dict[fx.Node, int] = {}
    for node in nodes:
        if node.op in ("get_attr", "output"):
            continue
        arg = node.args[0] if node.args else None
        root[node] = root[arg] if _is_view(gm, node) and isinstance(arg, fx.Node) and arg in root else node
        owner = root[node]
        uses = [order[u] for u in node.users if u.op != "output"] or [order[node]]
        last[owner] = max(last.get(owner, order[owner]), *uses)
    change = [0] * (len(nodes) + 1)
    for owner, end in last.items():
        size = _elements(owner)
        change[order[owner]] += size
        change[end + 1] -= size
    live, running = [], 0
    for delta in change[:-1]:
        running += delta
        live.append(running)
    return live


def segment_peaks(gm: fx.GraphModule, ends: list[fx.Node]) -> list[int]:
    """The peak of each segment between consecutive ``ends`` (the input, the cuts, the result)."""
    nodes = list(gm.graph.nodes)
    order = {n: i for i, n in enumerate(nodes)}
    live = _live_per_node(gm, nodes)
    peaks = []
    for start, end in itertools.pairwise(ends):
        span = live[order[start] + 1 : order[end] + 1]
        peaks.append(max(span, default=0))
    return peaks
