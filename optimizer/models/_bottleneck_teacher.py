"""The frozen teacher of a bottleneck training: its tail, and its outputs on the train images.

The head's activations at k are rounded to float16 (as the search's engine keeps them) and kept
with the logits in a cache file keyed by the weights' SHA-256, the dataset, the input size, k and
the image indices, so trainings of several betas at one split compute them once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from optimizer.data import ImageDataset
from optimizer.errors import UserError
from optimizer.models._checkpoint import save_atomic
from optimizer.models._split import build_head, build_tail, num_blocks
from optimizer.models._zoo import load_model

__all__ = ["TeacherData", "teacher_outputs"]


@dataclass(frozen=True)
class TeacherData:
    acts: torch.Tensor  # (N, C, H, W) head outputs at k
    logits: torch.Tensor  # (N, classes)
    labels: torch.Tensor  # (N,) int64, the dataset's labels of the same images
    tail: nn.Module  # frozen, eval mode


@torch.no_grad()
def teacher_outputs(cfg: Any, dataset: ImageDataset, idx: np.ndarray, cache: Path | None = None) -> TeacherData:
    """The frozen tail and, for ``idx``, the head's activations (rounded to float16, as the search's
    engine keeps them) and the logits; read from / written to ``cache`` when given."""
    loaded = load_model(cfg.alpha, cfg.weights, dataset.spec.split(":")[0])
    model = loaded.at_size(cfg.input_size)
    if not 1 <= cfg.k <= num_blocks(model):
        raise UserError(f"a bottleneck needs a split inside the body, 1 <= k <= {num_blocks(model)}; got k={cfg.k}")
    head, tail = build_head(model, cfg.k), build_tail(model, cfg.k).eval()
    for p in tail.parameters():
        p.requires_grad_(False)
    from optimizer.data._fingerprint import dataset_fingerprint  # the files, not the spec string

    key = json.dumps([loaded.fingerprint, dataset_fingerprint(dataset), cfg.input_size, cfg.k, idx.tolist()])
    labels = torch.as_tensor(dataset.labels[idx], dtype=torch.int64)
    path = cache / f"teacher-{hashlib.sha256(key.encode()).hexdigest()[:24]}.pt" if cache else None
    if path is not None and path.is_file():
        stored = torch.load(path, map_location="cpu", weights_only=True)
        return TeacherData(stored["acts"].float(), stored["logits"], labels, tail)
    acts, logits = [], []
    for start in range(0, len(idx), 250):
        a = head(dataset.batch(idx[start : start + 250], cfg.input_size)).half().float()
        acts.append(a)
        logits.append(tail(a))
    data = TeacherData(torch.cat(acts), torch.cat(logits), labels, tail)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_atomic({"acts": data.acts.half(), "logits": data.logits}, path)
    return data
