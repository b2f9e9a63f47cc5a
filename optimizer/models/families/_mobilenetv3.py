"""MobileNetV3 from torchvision: ``mobilenet_v3_small`` and ``mobilenet_v3_large``.

Hardswish activations and squeeze-excitation blocks (a per-channel multiply of the block's own
activation, so a block with SE has no split point inside it).
"""

from __future__ import annotations

from optimizer.models._adapter import ModelAdapter, TorchvisionAdapter

__all__ = ["ADAPTERS"]

ADAPTERS: tuple[ModelAdapter, ...] = (
    TorchvisionAdapter("mobilenet_v3_small", "torchvision's MobileNetV3-Small (hardswish, squeeze-excitation)"),
    TorchvisionAdapter("mobilenet_v3_large", "torchvision's MobileNetV3-Large (hardswish, squeeze-excitation)"),
)
