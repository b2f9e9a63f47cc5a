"""ResNets from torchvision: ``resnet18``, ``resnet34`` (basic blocks), ``resnet50`` (bottlenecks).

torchvision's ResNet-50 is "v1.5" (the stride sits in the 3x3 convolution), which is why its
published cost is 4.09 GMACs rather than the 3.8 of the original paper. Split points fall between
the residual blocks (``layerS.B``) and in the stem; a block's inside keeps its shortcut alive.
"""

from __future__ import annotations

from optimizer.models._adapter import ModelAdapter, TorchvisionAdapter

__all__ = ["ADAPTERS"]

ADAPTERS: tuple[ModelAdapter, ...] = (
    TorchvisionAdapter("resnet18", "torchvision's ResNet-18 (basic blocks 2-2-2-2)"),
    TorchvisionAdapter("resnet34", "torchvision's ResNet-34 (basic blocks 3-4-6-3)"),
    TorchvisionAdapter("resnet50", "torchvision's ResNet-50 v1.5 (bottleneck blocks 3-4-6-3)"),
)
