"""Split points found in a model's torch.fx graph, and head/tail GraphModules for each.

A cut after node N is valid when N's output is the only value alive across it: every value defined
up to N and used after it is N itself. So a cut never falls inside a residual block (the shortcut is
alive too) nor where a shape or a second branch crosses. Parameters and buffers (``get_attr``) are
not activations; whichever half needs them gets them. Of the valid cuts, those that split layers
which fuse at inference are left out: before an activation (after a convolution, BatchNorm or
residual addition whose only user it is) and between a convolution or linear layer and its
BatchNorm; so are cuts after dropout or identity (the same tensor as the cut before them).

Numbering (the one definition of k for any model): k = 0 sends the input; k = 1..m are the cuts in
execution order; k = m + 1 runs the whole model on the device (the head returns the output). A
split point is named after its fx node (``layer1_1_relu_1``, ``add_3``); ``module`` is the
outermost module whose output it is (``layer1.1``, ``features.3``), or ``""`` outside any module.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp, TensorMetadata

from optimizer.errors import UserError
from optimizer.models._fx_macs import count_macs
from optimizer.models._fx_trace import trace_model

__all__ = ["GraphSplitPoint", "SplitGraph"]

_BATCH_NORM = nn.modules.batchnorm._BatchNorm
_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU, nn.GELU, nn.Hardtanh, nn.LeakyReLU, nn.ELU, nn.Mish)
_ACTIVATION_FUNCTIONS = {"relu", "relu_", "relu6", "hardswish", "silu", "gelu", "hardtanh", "leaky_relu", "elu"}
_NO_OPS = (nn.Dropout, nn.Dropout2d, nn.Identity)


@dataclass(frozen=True)
class GraphSplitPoint:
    """One split point at one input size (batch dimension left out).

    Attributes:
        k: the split index.
        name: the fx node whose output crosses (``input`` at k = 0, ``logits`` at the last k).
        module: the outermost module whose output it is (``""`` for none).
        modules: every module whose output it is, outermost first (``("layer1", "layer1.1", "layer1.1.relu")``).
        shape: the activation's shape; the model's output shape at the last k.
        elements: the number of values in ``shape``.
        reduction: input size / the activation's height; 0 where it has no spatial dimensions.
        macs: multiply-adds of the segment from split k - 1 to this one (one MAC = one multiply-add,
            counted by fvcore); 0 at k = 0.
        cum_macs: multiply-adds of the head, the sum of ``macs`` up to k.
    """

    k: int
    name: str
    module: str
    modules: tuple[str, ...]
    shape: tuple[int, ...]
    elements: int
    reduction: int
    macs: int
    cum_macs: int


class SplitGraph:
    """A model traced once; its valid cuts, and head/tail GraphModules sharing the model's modules."""

    def __init__(
        self, model: nn.Module, leaves: tuple[type[nn.Module], ...] = (), label: str = "", channels: int = 3
    ) -> None:
        self.model, self.channels = model, channels
        self.gm = trace_model(model, leaves, label)
        with torch.no_grad():  # which values are tensors (a probe at 32 px, the smallest input of every family)
            ShapeProp(self.gm).propagate(torch.zeros(1, channels, 32, 32))
        nodes = list(self.gm.graph.nodes)
        inputs = [n for n in nodes if n.op == "placeholder"]
        result = nodes[-1].args[0]
        if len(inputs) != 1 or not isinstance(result, fx.Node):
            raise UserError(
                f"{label or type(model).__name__} must take one tensor and return one tensor to be split "
                f"(it takes {len(inputs)} inputs and returns {type(result).__name__}); wrap it in a module that does"
            )
        self.input, self.result = inputs[0], result
        self.cuts = [n for n in _valid_cuts(nodes) if n is not result and not self._fused(n)]
        self._modules = _module_of(nodes)

    def __len__(self) -> int:
        """The number of split indices, k = 0..len - 1."""
        return len(self.cuts) + 2

    def _check(self, k: int) -> None:
        if not 0 <= k < len(self):
            raise UserError(f"split k must be in 0..{len(self) - 1} for this model, got {k}")

    def _module(self, node: fx.Node) -> nn.Module | None:
        return self.gm.get_submodule(str(node.target)) if node.op == "call_module" else None

    def _fused(self, node: fx.Node) -> bool:
        """A cut after ``node`` would split layers that fuse at inference, or repeat the cut before it."""
        mod = self._module(node)
        if isinstance(mod, _NO_OPS) or (node.op == "call_function" and _name(node.target) == "dropout"):
            return True
        if len(node.users) != 1:
            return False
        user = next(iter(node.users))
        user_mod = self._module(user)
        if isinstance(user_mod, _ACTIVATIONS) or (
            user.op in ("call_function", "call_method") and _name(user.target) in _ACTIVATION_FUNCTIONS
        ):
            return True
        return isinstance(mod, _WEIGHTED) and isinstance(user_mod, _BATCH_NORM)

    def head(self, k: int) -> nn.Module:
        """The device part for split k (shares modules with the model)."""
        self._check(k)
        if k == 0:
            return nn.Identity()
        if k == len(self) - 1:
            return self.gm
        return _subgraph(self.gm, None, self.cuts[k - 1], "Head")

    def tail(self, k: int) -> nn.Module:
        """The server part for split k (shares modules with the model)."""
        self._check(k)
        if k == len(self) - 1:
            return nn.Identity()
        if k == 0:
            return self.gm
        return _subgraph(self.gm, self.cuts[k - 1], self.result, "Tail")

    def names(self) -> list[str]:
        """The name of every split point, by k (``input``, fx node names, ``logits``)."""
        return ["input", *(n.name for n in self.cuts), "logits"]

    def block_ks(self) -> list[int]:
        """The split points at block boundaries: the input, the outputs of modules at most two deep in
        the module tree (``features.3``, ``layer2.1``, ``layer3``, ``avgpool``), and the logits; for
        MobileNetV2 exactly its 21 block boundaries (the older numbering k = 0..20)."""
        inner = [
            k
            for k, node in enumerate(self.cuts, start=1)
            if any(m.count(".") <= 1 for m in self._modules.get(node, ()))
        ]
        return [0, *inner, len(self) - 1]

    def ks_of(self, cuts: str | list[str] | tuple[str, ...]) -> list[int]:
        """The ks a search space's ``cuts`` names: ``all``, ``blocks`` or split point names (sorted, once each)."""
        if cuts == "all":
            return list(range(len(self)))
        if cuts == "blocks":
            return self.block_ks()
        if isinstance(cuts, str):
            raise UserError(f"cuts must be all, blocks or a list of split point names, got {cuts!r}")
        return sorted(set(self.select(list(cuts))))

    def select(self, names: list[str]) -> list[int]:
        """The ks of named split points (a search space restricting cuts): a name is a split point's
        fx node name (``layer2_1_relu_1``), a module whose output it is (``layer2``), ``input`` or ``logits``."""
        ends = [("input", ()), *((n.name, self._modules.get(n, ())) for n in self.cuts), ("logits", ())]
        ks = []
        for name in names:
            found = [k for k, (node, modules) in enumerate(ends) if name == node or name in modules]
            if not found:
                known = ", ".join(node for node, _ in ends)
                raise UserError(f"the model has no split point named {name!r}; its split points are {known}")
            ks.append(found[0])
        return ks

    def taps(self, ks: list[int]) -> fx.GraphModule:
        """One forward that returns the activations at splits ``ks`` (a tuple, in that order): every
        split's input to the tail from a single pass, instead of one head per split."""
        for k in ks:
            self._check(k)
        ends = [self.input, *self.cuts, self.result]
        return _subgraph(self.gm, None, [ends[k] for k in ks], "Taps")

    def segment(self, k: int) -> nn.Module:
        """What runs between split k - 1 and split k (k >= 1): the head of k is segments 1..k in turn."""
        self._check(k)
        if k == 0:
            raise UserError("segment k must be at least 1: split 0 is the input itself")
        start = None if k == 1 else self.cuts[k - 2]
        return _subgraph(self.gm, start, self.result if k == len(self) - 1 else self.cuts[k - 1], "Segment")

    @torch.no_grad()
    def points(self, input_size: int, macs: bool = True) -> list[GraphSplitPoint]:
        """Every split point at a square input size (``macs=False`` skips fvcore, leaving the MACs 0).

        MACs are counted per segment, each on the activation it receives, and summed: the same
        count as fvcore on each head, with one pass over the model instead of one per split.
        """
        x = torch.zeros(1, self.channels, input_size, input_size)
        ShapeProp(self.gm).propagate(x)
        ends = [(self.input, "input"), *((n, n.name) for n in self.cuts), (self.result, "logits")]
        shapes = [tuple(node.meta["tensor_meta"].shape) for node, _ in ends]
        out, cum = [], 0
        for k, (node, name) in enumerate(ends):
            shape = shapes[k][1:]
            reduction = input_size // shape[1] if len(shape) == 3 and shape[1] else 0
            own = count_macs(self.segment(k), torch.zeros(shapes[k - 1])) if macs and k else 0
            cum += own
            modules = self._modules.get(node, ())
            elements = int(torch.Size(shape).numel())
            first = modules[0] if modules else ""
            out.append(GraphSplitPoint(k, name, first, modules, shape, elements, reduction, own, cum))
        return out


def _name(target: object) -> str:
    return target if isinstance(target, str) else getattr(target, "__name__", "")


def _valid_cuts(nodes: list[fx.Node]) -> list[fx.Node]:
    """Nodes whose output is the only non-parameter value alive right after them."""
    order = {n: i for i, n in enumerate(nodes)}
    last_use = {n: max((order[u] for u in n.users), default=-1) for n in nodes}
    live: set[fx.Node] = set()
    cuts = []
    for i, node in enumerate(nodes):
        if node.op in ("get_attr", "output"):
            continue
        live = {n for n in live if last_use[n] > i}
        if last_use[node] > i:
            live.add(node)
        if node.op != "placeholder" and live == {node} and isinstance(node.meta.get("tensor_meta"), TensorMetadata):
            cuts.append(node)
    return cuts


def _module_of(nodes: list[fx.Node]) -> dict[fx.Node, tuple[str, ...]]:
    """For each node, the modules it is the last node of (its output is their output), outermost first."""
    last: dict[str, fx.Node] = {}
    stacks = {n: [path for path, _ in n.meta.get("nn_module_stack", {}).values()] for n in nodes}
    for node in nodes:
        for path in stacks[node]:
            last[path] = node
    return {n: tuple(p for p in stacks[n] if last[p] is n) for n in nodes}


def _subgraph(
    gm: fx.GraphModule, start: fx.Node | None, end: fx.Node | list[fx.Node], class_name: str
) -> fx.GraphModule:
    """The nodes after ``start`` (or from the input) up to ``end``, as a GraphModule returning ``end``
    (a tuple when ``end`` is a list of nodes)."""
    ends = end if isinstance(end, list) else [end]
    order = {n: i for i, n in enumerate(gm.graph.nodes)}
    last = max(ends, key=order.__getitem__)
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}

    def arg(a: fx.Node) -> fx.Node:
        if a not in env:  # only parameters defined on the other side of the cut can be missing
            env[a] = graph.node_copy(a)
        return env[a]

    copying = start is None
    if start is not None:
        env[start] = graph.placeholder(start.name)
    for node in gm.graph.nodes:
        if copying and node.op != "get_attr":
            env[node] = graph.node_copy(node, arg)
        if node is last:
            break
        copying = copying or node is start
    graph.output(tuple(env[n] for n in ends) if isinstance(end, list) else env[end])
    graph.lint()
    return fx.GraphModule(gm, graph, class_name)
