"""Per-split facts of the study's models, shared by the two per-layer figures.

MACs and activation sizes come from the profiler (``profile_spec``, cached on disk), latency from
the device profile when the study names one. The *uncompressed accuracy* of a model is what its
outputs score when nothing is lost in transit; the all-local split (the last k) sends only the
class id, which is lossless, so its val accuracy is that number (float16 at a middle split is the
fallback: lossy only in the last bits).
"""

from __future__ import annotations

from typing import NamedTuple

from optimizer.codecs import OUTPUT
from optimizer.models import build_model, split_graph
from optimizer.profiler import profile_spec
from optimizer.report._records import StudyResults, TrialRecord

__all__ = [
    "SplitRow",
    "UncompressedAccuracy",
    "activation_ks",
    "models_of",
    "split_rows",
    "uncompressed_accuracy",
]


class SplitRow(NamedTuple):
    k: int
    layer: str  # the split point's name: "input", "features_3", "layer2_1_relu_1", "logits"
    shape: tuple[int, ...]
    cum_macs: int  # device MACs of the head up to k
    activation_bytes_fp32: int  # what crosses the network at k, uncompressed
    activation_bytes_fp16: int
    latency_ms: float | None  # predicted head latency on the device (None without a profile)


class UncompressedAccuracy(NamedTuple):
    accuracy: float | None
    source: str  # which trial it was read from, in words


def models_of(results: StudyResults) -> list[tuple[str, int]]:
    """(model spec, input size) of every model the search offered, else of every trial."""
    if results.models:
        return [(spec, size) for spec, offered in results.models.items() for size in offered["input_size"]]
    seen = {(str(t.model), int(t.input_size)) for t in results.trials if t.model is not None and t.input_size}
    return sorted(seen)


def split_rows(results: StudyResults, spec: str, input_size: int) -> list[SplitRow]:
    """One row per split point k = 0..last of the model at ``input_size``."""
    if results.device is not None:
        profile = profile_spec(results.device, spec, input_size, results.num_classes)
        return [
            SplitRow(
                s.k, s.name, tuple(s.shape), s.cum_macs, s.activation_bytes_fp32, s.activation_bytes_fp16, s.latency_ms
            )
            for s in profile.splits
        ]
    # NOTE: without a device profile the MACs and shapes are still known; latency is not.
    points = split_graph(spec, build_model(spec, results.num_classes)).points(input_size)
    return [SplitRow(p.k, p.name, tuple(p.shape), p.cum_macs, 4 * p.elements, 2 * p.elements, None) for p in points]


def activation_ks(results: StudyResults, spec: str, rows: list[SplitRow]) -> list[int]:
    """The splits that send an activation (not the image, not the class id) that the search offered
    this model (every such split when the study does not say)."""
    inner = [r.k for r in rows if 0 < r.k < len(rows) - 1]
    offered = results.models.get(spec, {}).get("k")
    return [k for k in inner if k in offered] if offered else inner


def _of_model(results: StudyResults, spec: str, input_size: int) -> list[TrialRecord]:
    return [t for t in results.complete if t.model == spec and t.input_size == input_size]


def uncompressed_accuracy(results: StudyResults, spec: str, input_size: int) -> UncompressedAccuracy:
    """The model's val accuracy with a lossless link: the all-local trial, else float16."""
    trials = _of_model(results, spec, input_size)
    local = [t for t in trials if t.place == OUTPUT]
    if local:
        return UncompressedAccuracy(local[0].accuracy, f"all-local split k={local[0].k} (trial {local[0].number})")
    fp16 = [t for t in trials if t.uncompressed]
    if fp16:
        best = max(fp16, key=lambda t: t.accuracy or 0.0)
        return UncompressedAccuracy(best.accuracy, f"float16 at k={best.k} (trial {best.number})")
    return UncompressedAccuracy(None, "no all-local or float16 trial of this model in the study")
