"""Tiny networks for tests and checks that export and time every split point (the calibration kit):
``python:tiny_nets:tiny_net`` with ``tests`` on the import path."""

from __future__ import annotations

from torch import nn

TINY_NET = "python:tiny_nets:tiny_net"


def tiny_net(num_classes: int = 10) -> nn.Module:
    """A dense, a depthwise and a pointwise convolution, activations of three classes, a pool and a
    classifier: a few split points, quick to export and time; every weight tensor but the biases is
    1 KiB or more (a kit moves those into weights.bin)."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU6(),
        nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.ReLU(),
        nn.Conv2d(16, 32, 1), nn.Hardswish(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, num_classes),
    )  # fmt: skip


tiny_net.preprocessing = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "channels": 3}  # type: ignore[attr-defined]
