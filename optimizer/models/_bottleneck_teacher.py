"""The frozen teacher of a bottleneck training: its tail, and its outputs on the train images.

The teacher is any model spec with its weights; the bottleneck sits at one of its torch.fx split
points (an activation, not the input or the logits). The head's activations there are rounded to
float16 (as the search's engine keeps them) and kept with the logits in a cache file keyed by the
weights' SHA-256, the dataset, the preprocessing, the input size, the split point and the image
indices, so trainings of several betas at one split compute them once.
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
from optimizer.models._fx_split import SplitGraph
from optimizer.models._registry import load_spec_model, split_graph

__all__ = ["TeacherData", "split_index", "teacher_outputs"]


@dataclass(frozen=True)
class TeacherData:
    acts: torch.Tensor  # (N, C, H, W) head outputs at k
    logits: torch.Tensor  # (N, classes)
    labels: torch.Tensor  # (N,) int64, the dataset's labels of the same images
    tail: nn.Module  # frozen, eval mode
    k: int  # the split index
    name: str  # the split point's fx node name


def split_index(graph: SplitGraph, split: str) -> int:
    """The k of ``split``: a split index, or a node or module name (``SplitGraph.select``)."""
    return int(split) if split.isdigit() else graph.select([split])[0]


@torch.no_grad()
def teacher_outputs(cfg: Any, dataset: ImageDataset, idx: np.ndarray, cache: Path | None = None) -> TeacherData:
    """The frozen tail and, for ``idx``, the head's activations (rounded to float16, as the search's
    engine keeps them) and the logits; read from / written to ``cache`` when given."""
    built = load_spec_model(cfg.model, cfg.weights, dataset.spec.split(":")[0])
    graph = split_graph(built.spec, built.at_size(cfg.input_size))
    k = split_index(graph, cfg.split)
    if not 0 < k < len(graph) - 1:
        raise UserError(
            f"a bottleneck sits at an activation split, 1 <= k <= {len(graph) - 2} of {built.spec}; got {cfg.split!r} "
            f"(k = {k}); `split-opt splits --model {built.spec}` lists them"
        )
    name = graph.names()[k]
    head, tail = graph.head(k), graph.tail(k).eval()
    for p in tail.parameters():
        p.requires_grad_(False)
    from optimizer.data._fingerprint import dataset_fingerprint  # the files, not the spec string

    prep = built.preprocessing
    ident = [built.fingerprint, dataset_fingerprint(dataset), prep.to_json(), cfg.input_size, name, idx.tolist()]
    key = json.dumps(ident)
    labels = torch.as_tensor(dataset.labels[idx], dtype=torch.int64)
    path = cache / f"teacher-{hashlib.sha256(key.encode()).hexdigest()[:24]}.pt" if cache else None
    if path is not None and path.is_file():
        stored = torch.load(path, map_location="cpu", weights_only=True)
        return TeacherData(stored["acts"].float(), stored["logits"], labels, tail, k, name)
    acts, logits = [], []
    for start in range(0, len(idx), 250):
        a = head(dataset.batch(idx[start : start + 250], cfg.input_size, prep)).half().float()
        acts.append(a)
        logits.append(tail(a))
    data = TeacherData(torch.cat(acts), torch.cat(logits), labels, tail, k, name)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_atomic({"acts": data.acts.half(), "logits": data.logits}, path)
    return data
