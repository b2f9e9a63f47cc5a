"""Split points found by torch.fx: tail(head(x)) == model(x) for every cut of every family, cut rules,
names, shapes, MACs, and the error for a model fx cannot trace."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import fx, nn

from optimizer.errors import UserError
from optimizer.models import (
    OnnxRunner,
    SplitGraph,
    build_mobilenetv2,
    build_model,
    count_macs,
    list_adapters,
    split_graph,
    split_points,
)

FAMILIES = [a.family for a in list_adapters() if a.family != "python"]  # python: see test_user_model


def _random_weights(model: nn.Module) -> nn.Module:
    """Random weights and BatchNorm statistics, so that eval-mode BatchNorm is not the identity."""
    torch.manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
    return model.eval()


@pytest.mark.parametrize("family", FAMILIES)
def test_tail_of_head_equals_model_at_every_cut(family: str) -> None:
    model = _random_weights(build_model(family, num_classes=10))
    graph = split_graph(family, model)
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        reference = model(x)
        for k in range(len(graph)):
            head, tail = graph.head(k), graph.tail(k)
            if 0 < k < len(graph) - 1:
                assert isinstance(head, fx.GraphModule) and isinstance(tail, fx.GraphModule)
            diff = (tail(head(x)) - reference).abs().max().item()
            assert diff <= 1e-5, f"{family} k={k}: max abs diff {diff}"


@pytest.mark.parametrize("family", FAMILIES)
def test_split_points_are_ordered_and_end_at_the_output(family: str) -> None:
    points = split_graph(family).points(64, macs=False)
    assert (points[0].k, points[0].name, points[0].shape, points[0].reduction) == (0, "input", (3, 64, 64), 1)
    assert (points[-1].name, points[-1].shape, points[-1].reduction) == ("logits", (1000,), 0)
    assert [p.k for p in points] == list(range(len(points)))
    assert len({p.name for p in points}) == len(points)
    reductions = [p.reduction for p in points if len(p.shape) == 3]
    assert reductions == sorted(reductions) and reductions[-1] == 64  # downsampling only grows, to 1 x 1


def test_resnet18_cuts_fall_between_residual_blocks() -> None:
    points = split_graph("resnet18").points(64, macs=False)
    interior = [p.module for p in points[1:-1]]
    blocks = [b for s in range(1, 5) for b in (f"layer{s}.0", f"layer{s}")]
    assert interior == ["relu", "maxpool", *blocks, "avgpool", ""]
    assert points[3].name == "layer1_0_relu_1" and points[3].shape == (64, 16, 16)
    assert [p.shape for p in points if p.module == "layer4"] == [(512, 2, 2)]


def test_mobilenetv2_fx_cuts_include_every_block_boundary() -> None:
    """Old k = i + 1 (the output of features[i]) is the fx split point whose modules include features.i."""
    model = build_mobilenetv2(0.35, 10)
    old = split_points(model, 64)
    new = split_graph("mobilenetv2:alpha=0.35", model).points(64, macs=False)
    for i in range(19):
        match = [p for p in new if f"features.{i}" in p.modules]
        assert len(match) == 1, i
        assert match[0].shape == old[i + 1].shape
    assert new[0].shape == old[0].shape and new[-1].shape == old[-1].shape
    assert [p.name for p in new if "features.3" in p.modules] == ["add"]  # a residual block ends in its addition


def test_cumulative_macs_are_counted_on_each_head() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 2, 1), nn.Flatten(), nn.Linear(2 * 32 * 32, 5),
    )  # fmt: skip
    points = SplitGraph(model).points(32)
    conv1, conv2, fc = 32 * 32 * 4 * 3 * 9, 32 * 32 * 2 * 4, 2 * 32 * 32 * 5
    # the cuts between conv and BatchNorm and between BatchNorm and ReLU split fused layers: left out
    assert [(p.name, p.cum_macs) for p in points] == [
        ("input", 0), ("_2", conv1), ("_3", conv1 + conv2), ("_4", conv1 + conv2), ("logits", conv1 + conv2 + fc),
    ]  # fmt: skip


def test_cumulative_macs_of_resnet18_at_224_match_its_stages() -> None:
    points = split_graph("resnet18").points(224)
    stem = 112 * 112 * 64 * 3 * 49
    assert points[1].cum_macs == stem and points[2].cum_macs == stem  # max-pool is no MAC
    assert points[-1].cum_macs - points[-2].cum_macs == 512 * 1000  # the fc layer
    assert all(a.cum_macs <= b.cum_macs for a, b in itertools.pairwise(points))


class _Gate(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if x.sum() > 0 else -x  # control flow on a tensor value: fx cannot trace it


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2)
        self.body = nn.Sequential(nn.ReLU(), _Gate())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.stem(x)))


def test_untraceable_module_is_named_with_the_fix() -> None:
    with pytest.raises(UserError) as info:
        SplitGraph(_Net(), label="python:my.mod:make")
    message = str(info.value)
    assert "\n" not in message
    assert "torch.fx cannot trace python:my.mod:make at module 'body.1' (_Gate)" in message
    assert "mark _Gate a leaf module" in message and "make its forward traceable" in message
    graph = SplitGraph(_Net(), leaves=(_Gate,))  # the stem conv fuses with the ReLU after it: no cut between
    assert [p.name for p in graph.points(32, macs=False)] == ["input", "body_0", "body_1", "head_0", "head_1", "logits"]


def test_models_with_several_outputs_are_refused() -> None:
    class TwoOut(nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return x, x

    with pytest.raises(UserError, match="must take one tensor and return one tensor"):
        SplitGraph(TwoOut())


def test_segment_macs_add_up_to_fvcore_on_each_head() -> None:
    graph = split_graph("mobilenet_v3_small")
    points = graph.points(64)
    x = torch.zeros(1, 3, 64, 64)
    assert [p.cum_macs for p in points] == [count_macs(graph.head(k), x) if k else 0 for k in range(len(graph))]
    assert sum(p.macs for p in points) == points[-1].cum_macs == count_macs(graph.model, x)
    with pytest.raises(UserError, match="segment k must be at least 1"):
        graph.segment(0)


@pytest.mark.parametrize("family", ["resnet18", "mobilenet_v3_small", "efficientnet_b0"])
def test_fx_halves_export_to_onnx_and_compute_the_same(family: str) -> None:
    model = _random_weights(build_model(family, num_classes=10))
    graph = split_graph(family, model)
    x = torch.randn(3, 3, 64, 64)
    points = graph.points(64, macs=False)
    with torch.no_grad():
        reference = model(x).numpy()
        for k in (1, len(graph) // 2, len(graph) - 2):
            head = OnnxRunner(graph.head(k), (3, 64, 64))(x)
            assert head.shape[1:] == points[k].shape
            tail = OnnxRunner(graph.tail(k), points[k].shape)(head)
            np.testing.assert_allclose(tail, reference, atol=1e-4, err_msg=f"{family} k={k}")


def test_taps_return_every_split_activation_from_one_forward() -> None:
    model = _random_weights(build_model("mobilenet_v3_small", num_classes=10))
    graph = split_graph("mobilenet_v3_small", model)
    ks = [len(graph) - 1, *range(len(graph) - 1)]  # any order, the input and the output included
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        taps = graph.taps(ks)(x)
        assert len(taps) == len(ks)
        for k, activation in zip(ks, taps, strict=True):
            torch.testing.assert_close(activation, graph.head(k)(x), rtol=0, atol=0)
    with pytest.raises(UserError, match="split k must be in"):
        graph.taps([len(graph)])


def test_split_points_are_selected_by_node_or_module_name() -> None:
    graph = split_graph("resnet18")
    points = graph.points(64, macs=False)
    ks = graph.select(["input", "layer2", "layer3_0_relu_1", "maxpool", "logits"])
    assert [points[k].name for k in ks] == ["input", "layer2_1_relu_1", "layer3_0_relu_1", "maxpool", "logits"]
    with pytest.raises(UserError, match=r"no split point named 'layer2.0.conv1'; its split points are input, relu, "):
        graph.select(["layer2.0.conv1"])
