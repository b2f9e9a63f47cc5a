"""BatchNorm statistics per input size.

One set of weights serves several input sizes, but BatchNorm's running mean and variance do not:
the activation statistics at 32 x 32 (1 x 1 final maps) differ from those at 96 x 96, and a single
average over mixed-size training serves none of them well (measured on the alpha 1.0 zoo model:
test accuracy 0.47 at 32 with shared statistics, 0.86 with statistics of its own). So after
training, the statistics are re-estimated for each input size on train images (cumulative average,
as in slimmable networks' BN calibration) and stored beside the weights as ``bn_stats.{size}.*``.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from optimizer.data import ImageDataset

__all__ = [
    "BN_PREFIX",
    "apply_bn_stats",
    "calibrate_bn",
    "check_bn_stats",
    "join_bn_stats",
    "nearest_size",
    "split_bn_stats",
]

BN_PREFIX = "bn_stats."
_BUFFERS = ("running_mean", "running_var")


def split_bn_stats(
    state: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[int, dict[str, torch.Tensor]]]:
    """A stored state dict -> (the model's own state, {input size: BN buffers})."""
    base: dict[str, torch.Tensor] = {}
    stats: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key.startswith(BN_PREFIX):
            size, _, name = key[len(BN_PREFIX) :].partition(".")
            stats.setdefault(int(size), {})[name] = value
        else:
            base[key] = value
    return base, stats


def join_bn_stats(state: dict[str, torch.Tensor], stats: dict[int, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    out = dict(state)
    for size, buffers in stats.items():
        out.update({f"{BN_PREFIX}{size}.{name}": value for name, value in buffers.items()})
    return out


def check_bn_stats(model: nn.Module, stats: dict[str, torch.Tensor]) -> None:
    """Raise ValueError unless every buffer in ``stats`` exists in ``model`` with the same shape."""
    own = model.state_dict()
    for name, value in stats.items():
        if name not in own or own[name].shape != value.shape:
            raise ValueError(f"BatchNorm statistics {name} {tuple(value.shape)} do not fit the model")


def apply_bn_stats(model: nn.Module, stats: dict[str, torch.Tensor]) -> None:
    """Overwrite the BatchNorm buffers of ``model`` with ``stats`` (names as in its state dict)."""
    check_bn_stats(model, stats)
    own = model.state_dict()
    model.load_state_dict({**own, **{k: v.to(own[k].dtype) for k, v in stats.items()}})


def nearest_size(sizes: list[int], size: int) -> int:
    return min(sizes, key=lambda s: (abs(s - size), s))


@torch.no_grad()
def calibrate_bn(
    model: nn.Module, dataset: ImageDataset, indices: np.ndarray, size: int, batch_size: int = 200
) -> dict[str, torch.Tensor]:
    """Re-estimate every BatchNorm's statistics at ``size`` over ``indices`` (no augmentation)."""
    probe = copy.deepcopy(model)
    for module in probe.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average over all batches
    probe.train()
    for start in range(0, len(indices), batch_size):
        probe(dataset.batch(indices[start : start + batch_size], size))
    return {name: buf.clone() for name, buf in probe.state_dict().items() if name.endswith(_BUFFERS)}
