"""Costs of a model spec per fx segment, counted once and kept in memory and on disk.

The disk key is (spec string, num_classes, input size, cache version, a hash of the traced graph):
the hash covers the graph's code and every module's description (layer types, channels, kernels),
so a ``python:`` factory whose code was edited is recounted, not served stale.

Location: ``$SPLIT_OPT_CACHE_DIR`` or ``~/.cache/split-opt``; delete the folder to clear it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from dataclasses import asdict
from pathlib import Path

import torch
from torch.fx.passes.shape_prop import ShapeProp

from optimizer.models import SplitGraph, adapter_for, build_model, parse_model_spec, split_graph
from optimizer.profiler._costs import LayerCost, SegmentCost, SpecCosts
from optimizer.profiler._count import count_segments
from optimizer.profiler._liveness import segment_peaks

__all__ = ["cache_dir", "count_graph", "count_spec", "graph_hash", "spec_costs", "traced"]

CACHE_VERSION = 2  # bump when the counting convention changes


def cache_dir() -> Path:
    return Path(os.environ.get("SPLIT_OPT_CACHE_DIR") or Path.home() / ".cache" / "split-opt")


def graph_hash(graph: SplitGraph) -> str:
    """A digest of the traced graph: its code and the description of every module it holds."""
    return hashlib.sha256(str(graph.gm).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=64)
def traced(spec: str, num_classes: int) -> tuple[str, str]:
    """(canonical spec, graph hash) of an untrained model of ``spec`` (traced once per process)."""
    canonical = str(parse_model_spec(spec))
    return canonical, graph_hash(split_graph(canonical, build_model(canonical, num_classes)))


def count_spec(spec: str, num_classes: int, input_size: int) -> SpecCosts:
    """Count every segment of ``spec`` at ``input_size`` now (no cache)."""
    canonical = str(parse_model_spec(spec))
    adapter_for(canonical).check_input_size(input_size)
    return count_graph(split_graph(canonical, build_model(canonical, num_classes)), input_size, canonical, num_classes)


@torch.no_grad()
def count_graph(graph: SplitGraph, input_size: int, spec: str = "", num_classes: int = 0) -> SpecCosts:
    """Count every segment k = 1..last of a traced model at a square ``input_size``."""
    x = torch.zeros(1, graph.channels, input_size, input_size)
    ShapeProp(graph.gm).propagate(x)
    ends = [graph.input, *graph.cuts, graph.result]
    shapes = [tuple(node.meta["tensor_meta"].shape) for node in ends]
    names = ["input", *(n.name for n in graph.cuts), "logits"]
    peaks = segment_peaks(graph.gm, ends)
    segments = []
    counts = count_segments([graph.segment(k) for k in range(1, len(graph))], torch.zeros(shapes[0]))
    for k, (layers, elementwise, other, uncounted) in enumerate(counts, start=1):
        size_in, size_out = (int(torch.Size(shapes[i]).numel()) for i in (k - 1, k))
        segments.append(
            SegmentCost(
                k, names[k], shapes[k][1:], layers, elementwise, other, size_in, size_out, peaks[k - 1], uncounted
            )
        )
    ShapeProp(graph.gm).propagate(torch.zeros(1, graph.channels, 32, 32))  # the shapes SplitGraph left
    return SpecCosts(spec, num_classes, input_size, int(x.numel()), graph_hash(graph), segments)


def _from_json(doc: dict) -> SpecCosts:
    segments = [
        SegmentCost(**{**s, "shape": tuple(s["shape"]), "layers": [LayerCost(**layer) for layer in s["layers"]]})
        for s in doc["segments"]
    ]
    return SpecCosts(**{**doc, "segments": segments})


def _path(spec: str, num_classes: int, input_size: int, digest: str) -> Path:
    readable = re.sub(r"[^A-Za-z0-9.=-]+", "_", spec)[:80]
    return cache_dir() / "costs" / f"v{CACHE_VERSION}_{readable}_{num_classes}_{input_size}_{digest}.json"


@functools.lru_cache(maxsize=256)
def spec_costs(spec: str, num_classes: int, input_size: int) -> SpecCosts:
    """Costs of ``spec`` at ``input_size``, from the disk cache or counted now (and stored)."""
    canonical, digest = traced(spec, num_classes)
    path = _path(canonical, num_classes, input_size, digest)
    if path.is_file():
        try:
            return _from_json(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)  # a damaged entry is recounted, never trusted
    costs = count_spec(canonical, num_classes, input_size)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(costs)))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home only costs the recount next time
    return costs
