"""Split points: the one definition of k, and head/tail construction for any k.

For a body ``features[0..n-1]`` followed by pooling and the classifier (n = 19 for MobileNetV2):

- k = 0 sends the input image (the head is the identity);
- 1 <= k <= n sends the output of ``features[k-1]``;
- k = n + 1 runs everything on the device: the head is the whole model and returns the logits, and
  only the class id needs to cross the network (the codec's concern); the tail is the identity.

``tail(head(x)) == model(x)`` for every k: head and tail share the model's modules, so they are
views, not copies.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["SplitPoint", "build_head", "build_tail", "features_of", "num_blocks", "split_points", "split_range"]


@dataclass(frozen=True)
class SplitPoint:
    """What crosses the network at split k, for one input size (batch dimension left out).

    Attributes:
        k: the split index.
        name: ``input``, ``features.{k-1}`` or ``logits``.
        module: the class name of the block whose output this is.
        shape: (C, H, W) of the activation, or (num_classes,) at k = n + 1.
        elements: the number of values in ``shape``.
        reduction: input size / H (spatial downsampling so far); 0 at k = n + 1.
    """

    k: int
    name: str
    module: str
    shape: tuple[int, ...]
    elements: int
    reduction: int


def features_of(model: nn.Module) -> nn.Sequential:
    """The model's body; every index of it is a cut."""
    features = model.features
    if not isinstance(features, nn.Sequential):
        raise TypeError(f"expected model.features to be nn.Sequential, got {type(features).__name__}")
    return features


def num_blocks(model: nn.Module) -> int:
    """n, the number of blocks in ``model.features``."""
    return len(features_of(model))


def split_range(model: nn.Module) -> range:
    """Every valid k for ``model``: 0..n+1."""
    return range(num_blocks(model) + 2)


def _check_k(model: nn.Module, k: int) -> None:
    from optimizer.errors import UserError

    n = num_blocks(model)
    if not 0 <= k <= n + 1:
        raise UserError(f"split k must be in 0..{n + 1} for this model (n = {n} blocks), got {k}")


class _Tail(nn.Module):
    """``features[k:]``, then pooling and the classifier, exactly as MobileNetV2.forward does."""

    def __init__(self, model: nn.Module, k: int) -> None:
        super().__init__()
        self.features = features_of(model)[k:]
        self.classifier = model.classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, (1, 1))
        return self.classifier(torch.flatten(x, 1))  # type: ignore[operator,no-any-return]


def build_head(model: nn.Module, k: int) -> nn.Module:
    """The device part for split k (shares modules with ``model``)."""
    _check_k(model, k)
    if k == 0:
        return nn.Identity()
    if k == num_blocks(model) + 1:
        return model
    return features_of(model)[:k]


def build_tail(model: nn.Module, k: int) -> nn.Module:
    """The server part for split k (shares modules with ``model``)."""
    _check_k(model, k)
    if k == num_blocks(model) + 1:
        return nn.Identity()
    return _Tail(model, k)


@torch.no_grad()
def split_points(model: nn.Module, input_size: int) -> list[SplitPoint]:
    """Describe every split point of ``model`` at a square input size (one forward pass)."""
    x = torch.zeros(1, 3, input_size, input_size)
    points = [SplitPoint(0, "input", "Image", (3, input_size, input_size), 3 * input_size**2, 1)]
    was_training = model.training
    model.eval()
    for i, block in enumerate(features_of(model)):
        x = block(x)
        shape = tuple(x.shape[1:])
        points.append(
            SplitPoint(i + 1, f"features.{i}", type(block).__name__, shape, int(x[0].numel()), input_size // shape[1])
        )
    logits = build_tail(model, len(points) - 1)(x)
    points.append(SplitPoint(len(points), "logits", "Classifier", tuple(logits.shape[1:]), int(logits[0].numel()), 0))
    model.train(was_training)
    return points
