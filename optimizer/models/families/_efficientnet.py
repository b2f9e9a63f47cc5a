"""EfficientNet-B0 from torchvision: ``efficientnet_b0``.

MBConv blocks with SiLU, squeeze-excitation and stochastic depth (the identity in eval mode, which
is how the graph is traced). torchvision's weights expect bicubic resizing (256 -> 224).
"""

from __future__ import annotations

from optimizer.models._adapter import ModelAdapter, TorchvisionAdapter

__all__ = ["ADAPTERS"]

ADAPTERS: tuple[ModelAdapter, ...] = (
    TorchvisionAdapter("efficientnet_b0", "torchvision's EfficientNet-B0 (MBConv, SiLU, squeeze-excitation)"),
)
