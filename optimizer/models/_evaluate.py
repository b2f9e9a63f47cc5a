"""Top-1 accuracy of a classifier on a split of a dataset, in batches, on the CPU."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from optimizer.data import ImageDataset, Indices

__all__ = ["accuracy", "predict"]


@torch.no_grad()
def predict(
    model: nn.Module,
    dataset: ImageDataset,
    indices: Indices,
    input_size: int,
    batch_size: int = 256,
    progress: Callable[[int], object] | None = None,
) -> np.ndarray:
    """Predicted class ids for ``indices`` at ``input_size``; ``progress(n)`` after each batch."""
    model.eval()
    out = []
    for start in range(0, len(indices), batch_size):
        chunk = indices[start : start + batch_size]
        out.append(model(dataset.batch(chunk, input_size)).argmax(1).numpy())
        if progress:
            progress(len(chunk))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def accuracy(
    model: nn.Module,
    dataset: ImageDataset,
    indices: Indices,
    input_size: int,
    batch_size: int = 256,
    progress: Callable[[int], object] | None = None,
) -> float:
    """Fraction of ``indices`` whose top-1 prediction equals the label."""
    pred = predict(model, dataset, indices, input_size, batch_size, progress)
    return float((pred == dataset.labels[np.asarray(indices)]).mean()) if len(pred) else float("nan")
