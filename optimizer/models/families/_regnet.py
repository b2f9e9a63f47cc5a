"""RegNet from torchvision: ``regnet_x_400mf`` (grouped 3x3 convolutions in residual bottlenecks)."""

from __future__ import annotations

from optimizer.models._adapter import ModelAdapter, TorchvisionAdapter

__all__ = ["ADAPTERS"]

ADAPTERS: tuple[ModelAdapter, ...] = (
    TorchvisionAdapter("regnet_x_400mf", "torchvision's RegNetX-400MF (grouped convolutions, residual stages)"),
)
