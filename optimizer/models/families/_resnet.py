"""ResNets from torchvision: ``resnet18``, ``resnet34`` (basic blocks), ``resnet50`` (bottlenecks).

torchvision's ResNet-50 is "v1.5" (the stride sits in the 3x3 convolution), which is why its
published cost is 4.09 GMACs rather than the 3.8 of the original paper. Split points fall between
the residual blocks (``layerS.B``) and in the stem; a block's inside keeps its shortcut alive.

``width`` scales every stage's channels (``resnet18:width=0.5`` has 32-64-128-256 channels, a
quarter of the MACs and parameters); the default 1.0 is torchvision's model and left out of the
spec's text, so ``resnet18`` names it. Only width 1.0 has torchvision weights.
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from optimizer.errors import UserError
from optimizer.models._adapter import TorchvisionAdapter
from optimizer.models._spec import ModelSpec, Param

__all__ = ["ADAPTERS", "ResNetAdapter"]

_STAGES: dict[str, tuple[type[nn.Module], list[int]]] = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
}


def _channels(base: int, width: float) -> int:
    """``base * width`` rounded to a multiple of 8 (at least 8), as MobileNets round their widths."""
    return max(8, round(base * width / 8) * 8)


def _scaled_resnet(family: str, width: float, num_classes: int) -> nn.Module:
    """torchvision's ResNet with every stage's channels scaled by ``width`` (same layout, same init)."""
    block, layers = _STAGES[family]
    model = ResNet(block, layers, num_classes=num_classes)  # type: ignore[arg-type]
    model.inplanes = _channels(64, width)
    model.conv1 = nn.Conv2d(3, model.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
    model.bn1 = nn.BatchNorm2d(model.inplanes)
    model.layer1 = model._make_layer(block, _channels(64, width), layers[0])  # type: ignore[arg-type]
    model.layer2 = model._make_layer(block, _channels(128, width), layers[1], stride=2)  # type: ignore[arg-type]
    model.layer3 = model._make_layer(block, _channels(256, width), layers[2], stride=2)  # type: ignore[arg-type]
    model.layer4 = model._make_layer(block, _channels(512, width), layers[3], stride=2)  # type: ignore[arg-type]
    model.fc = nn.Linear(_channels(512, width) * block.expansion, num_classes)  # type: ignore[attr-defined]
    for m in model.modules():  # torchvision's initialisation, for the replaced layers
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
    return model


class ResNetAdapter(TorchvisionAdapter):
    params = (Param("width", float, 1.0, low=0.0, high=4.0, implicit=True),)

    def build(self, spec: ModelSpec, num_classes: int | None = None) -> nn.Module:
        width = spec.get("width")
        if width == 1.0:
            return super().build(spec, num_classes)
        if num_classes is not None and num_classes < 1:
            raise UserError(f"num_classes must be at least 1, got {num_classes!r}")
        return _scaled_resnet(self.family, width, num_classes or 1000).eval()

    def torchvision_weights(self, spec: ModelSpec, tag: str) -> Any:
        if spec.get("width") != 1.0:
            raise UserError(f"torchvision's weights are for width 1.0, not {spec}; use {self.family}")
        return super().torchvision_weights(spec, tag)


ADAPTERS: tuple[ResNetAdapter, ...] = (
    ResNetAdapter("resnet18", "torchvision's ResNet-18 (basic blocks 2-2-2-2), width multiplier width"),
    ResNetAdapter("resnet34", "torchvision's ResNet-34 (basic blocks 3-4-6-3), width multiplier width"),
    ResNetAdapter("resnet50", "torchvision's ResNet-50 v1.5 (bottleneck blocks 3-4-6-3), width multiplier width"),
)
