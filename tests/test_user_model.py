"""A user's own model through ``python:test_user_model:make_user_model``: the factory below, a state dict
file the test writes, the declared preprocessing, tracing (with a leaf module) and every split point."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from optimizer.errors import UserError
from optimizer.models import build_model, get_adapter, load_spec_model, parse_model_spec, split_graph

SPEC = "python:test_user_model:make_user_model"


class Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


class SignGate(nn.Module):
    """Python control flow on a tensor value: fx cannot trace into it, so the factory marks it a leaf."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if float(x.mean()) >= 0 else x.abs()


def make_user_model(num_classes: int = 4) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        Residual(8), SignGate(), nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, num_classes),
    )  # fmt: skip


make_user_model.preprocessing = {"mean": [0.2860], "std": [0.3530], "channels": 1, "resize": "stretch"}  # type: ignore[attr-defined]
make_user_model.leaf_modules = (SignGate,)  # type: ignore[attr-defined]


def make_untraceable_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3), SignGate(), nn.Flatten(), nn.LazyLinear(2))


def _weights_file(tmp_path: Path) -> tuple[nn.Module, Path]:
    torch.manual_seed(0)
    source = make_user_model(num_classes=5).eval()
    bn = source[1]
    bn.running_mean.uniform_(-0.2, 0.2)
    bn.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "user.pt"
    torch.save(source.state_dict(), path)
    return source, path


def test_factory_model_with_a_state_dict_loads_traces_and_splits(tmp_path: Path) -> None:
    source, path = _weights_file(tmp_path)
    built = load_spec_model(SPEC, f"file:{path}")
    assert str(built.spec) == SPEC and built.num_classes == 5 and built.weights == f"file:{path}"
    prep = built.preprocessing
    assert (prep.mean, prep.std, prep.channels, prep.resize) == ((0.286,), (0.353,), 1, "stretch")
    graph = split_graph(built.spec, built.model)
    points = graph.points(32)
    assert [(p.name, p.module) for p in points] == [
        ("input", ""), ("_2", "2"), ("add", "3"), ("_4", "4"), ("_6", "6"), ("_7", "7"), ("_8", "8"), ("logits", "9"),
    ]  # fmt: skip  # nothing inside the residual block; the leaf gate is one node
    assert [p.shape for p in points[:3]] == [(1, 32, 32), (8, 16, 16), (8, 16, 16)]
    assert points[-1].cum_macs == 16 * 16 * 8 * 9 + 16 * 16 * 8 * 8 * 9 + 8 * 8 * 16 * 8 * 9 + 16 * 5
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        reference = source(x)
        torch.testing.assert_close(built.model(x), reference)
        for k in range(len(graph)):
            assert (graph.tail(k)(graph.head(k)(x)) - reference).abs().max().item() <= 1e-5, k


def test_factory_without_its_leaf_module_names_it(tmp_path: Path) -> None:
    spec = parse_model_spec("python:test_user_model:make_untraceable_model")
    assert get_adapter("python").leaf_modules(spec) == ()
    with pytest.raises(UserError, match=r"cannot trace python:test_user_model:make_untraceable_model at module '1' "):
        split_graph(spec, build_model(spec))
