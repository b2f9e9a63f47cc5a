"""MobileNetV2 from torchvision with a width multiplier alpha and any input size.

torchvision keeps the body as ``features`` (an ``nn.Sequential`` of 19 blocks), then average
pooling and ``classifier`` (dropout + linear). The input size is not part of the weights: a network
built here runs at any square input of at least 32 pixels (the body downsamples by 32).
"""

from __future__ import annotations

from torch import nn
from torchvision.models import MobileNetV2

from optimizer.errors import UserError

__all__ = ["FAMILY", "MIN_INPUT_SIZE", "build_mobilenetv2", "check_input_size", "legacy_model_spec"]

FAMILY = "mobilenetv2"
MIN_INPUT_SIZE = 32


def check_input_size(input_size: int) -> int:
    """Reject sizes the network cannot take, with the rule and the fix."""
    if not isinstance(input_size, int) or input_size < MIN_INPUT_SIZE:
        raise UserError(
            f"input size must be an integer of at least {MIN_INPUT_SIZE} pixels "
            f"(MobileNetV2 downsamples by 32), got {input_size!r}"
        )
    return input_size


def build_mobilenetv2(alpha: float, num_classes: int, dropout: float = 0.2) -> nn.Module:
    """An untrained MobileNetV2 in eval mode; load weights with :mod:`optimizer.models._weights`."""
    if not 0 < alpha <= 4:
        raise UserError(f"width multiplier alpha must be in (0, 4], got {alpha!r}")
    if num_classes < 1:
        raise UserError(f"num_classes must be at least 1, got {num_classes!r}")
    return MobileNetV2(num_classes=num_classes, width_mult=alpha, dropout=dropout).eval()


def legacy_model_spec(alpha: float) -> str:
    """The model a study, card or bundle written before model specs meant by ``alpha`` alone:
    MobileNetV2 at that width (the only family then); its splits were numbered by block boundary."""
    text = f"{float(alpha):g}"
    return f"{FAMILY}:alpha={text if '.' in text else text + '.0'}"
