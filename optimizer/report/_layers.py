"""Per-split facts of the study's models, shared by the two per-layer figures.

MACs and activation sizes come from the profiler (``profile_model``, cached on disk), latency from
the device profile when the study names one. The *uncompressed accuracy* of a model is what its
outputs score when nothing is lost in transit; the all-local split k = n + 1 sends only the class
id, which is lossless, so its val accuracy is that number (float16 at a middle split is the
fallback: lossy only in the last bits).
"""

from __future__ import annotations

from typing import NamedTuple

from optimizer.models import build_mobilenetv2, split_points
from optimizer.profiler import model_costs, profile_model
from optimizer.report._records import StudyResults, TrialRecord
from optimizer.search import N_BLOCKS

__all__ = ["SplitRow", "UncompressedAccuracy", "models_of", "split_rows", "uncompressed_accuracy"]


class SplitRow(NamedTuple):
    k: int
    layer: str  # "input", "features.3", "logits"
    shape: tuple[int, ...]
    cum_macs: int  # device MACs of the head up to k
    activation_bytes_fp32: int  # what crosses the network at k, uncompressed
    activation_bytes_fp16: int
    latency_ms: float | None  # predicted head latency on the device (None without a profile)


class UncompressedAccuracy(NamedTuple):
    accuracy: float | None
    source: str  # which trial it was read from, in words


def models_of(results: StudyResults) -> list[tuple[float, int]]:
    """(alpha, input size) of every model the search space offers, else of every trial."""
    alphas, sizes = results.space.get("alpha"), results.space.get("input_size")
    if alphas and sizes:
        return [(float(a), int(s)) for a in alphas for s in sizes]
    seen = {(float(t.alpha), int(t.input_size)) for t in results.trials if t.alpha is not None and t.input_size}
    return sorted(seen)


def split_rows(results: StudyResults, alpha: float, input_size: int) -> list[SplitRow]:
    """One row per k = 0..n+1 for MobileNetV2(alpha) at ``input_size``."""
    if results.device is not None:
        profile = profile_model(results.device, alpha, input_size, results.num_classes)
        return [
            SplitRow(
                s.k,
                s.name,
                tuple(s.shape),
                s.cum_macs,
                s.activation_bytes_fp32,
                s.activation_bytes_fp16,
                s.latency_ms,
            )
            for s in profile.splits
        ]
    # NOTE: without a device profile the MACs and shapes are still known; latency is not.
    costs = model_costs(alpha, results.num_classes, input_size)
    points = split_points(build_mobilenetv2(alpha, results.num_classes), input_size)
    rows, macs = [], 0
    for point in points:
        macs += costs.blocks[point.k - 1].macs if 0 < point.k <= len(costs.blocks) else 0
        rows.append(
            SplitRow(point.k, point.name, tuple(point.shape), macs, 4 * point.elements, 2 * point.elements, None)
        )
    return rows


def _of_model(results: StudyResults, alpha: float, input_size: int) -> list[TrialRecord]:
    return [t for t in results.complete if t.alpha == alpha and t.input_size == input_size]


def uncompressed_accuracy(results: StudyResults, alpha: float, input_size: int) -> UncompressedAccuracy:
    """The model's val accuracy with a lossless link: the all-local trial, else float16."""
    trials = _of_model(results, alpha, input_size)
    local = [t for t in trials if t.k == N_BLOCKS + 1]
    if local:
        return UncompressedAccuracy(local[0].accuracy, f"all-local split k={N_BLOCKS + 1} (trial {local[0].number})")
    fp16 = [t for t in trials if t.kind == "float16"]
    if fp16:
        best = max(fp16, key=lambda t: t.accuracy or 0.0)
        return UncompressedAccuracy(best.accuracy, f"float16 at k={best.k} (trial {best.number})")
    return UncompressedAccuracy(None, "no all-local or float16 trial of this model in the study")
