"""Figure data for "compression per layer" (Assine et al., Fig. 2).

For one model and each activation split the search offered it: the smallest mean payload among the study's trials at k
whose val accuracy stays within ``TOLERANCE`` (1 point) of the model's uncompressed accuracy, next
to the float16 activation at every k and to the image codecs (JPEG, WebP, PNG) at k = 0. The
*sweet spot* is the k with the smallest such payload; it is reported with how it compares with
the best image codec within the same tolerance. Learned bottlenecks (issue 8) are listed on their
own, every trained one tried at its k, so they sit side by side with the PCA line and the image
codecs. Only what the study tried can appear: a k without a trial within tolerance is listed, not
guessed.
"""

from __future__ import annotations

from typing import NamedTuple

from optimizer.codecs import ACTIVATION
from optimizer.report._layers import activation_ks, models_of, split_rows, uncompressed_accuracy
from optimizer.report._records import StudyResults, TrialRecord, describe, model_label

__all__ = ["TOLERANCE", "CompressionInfo", "Point", "compression_info", "compression_infos"]

TOLERANCE = 0.01  # one accuracy point


class Point(NamedTuple):
    k: int
    payload_bytes: float
    accuracy: float
    trial: int
    label: str  # the configuration in words


class CompressionInfo(NamedTuple):
    model: str  # the label: model spec and input size
    spec: str
    input_size: int
    reference_accuracy: float | None
    reference_source: str
    smallest: list[Point]  # per activation split with a trial within tolerance, increasing k
    missing_k: list[int]  # activation splits offered with no trial within tolerance
    float16_k: list[int]
    float16_bytes: list[int]  # body size of the uncompressed float16 activation
    images: list[Point]  # k = 0 trials of this model (every format and quality tried)
    images_within: list[bool]  # whether each image point is within tolerance
    sweet_spot: Point | None
    message: str
    bottlenecks: tuple[Point, ...] = ()  # every learned-bottleneck trial of this model, by k then bytes
    bottlenecks_within: tuple[bool, ...] = ()


def _within(record: TrialRecord, reference: float | None) -> bool:
    return reference is not None and (record.accuracy or 0.0) >= reference - TOLERANCE - 1e-12


def _point(record: TrialRecord) -> Point:
    return Point(
        int(record.k or 0),
        float(record.payload_bytes or 0),
        float(record.accuracy or 0),
        record.number,
        describe(record),
    )


def _message(info_model: str, sweet: Point | None, images: list[Point], within: list[bool], missing: list[int]) -> str:
    if sweet is None:
        return f"{info_model}: no activation split has a trial within 1 point of the uncompressed accuracy"
    text = f"sweet spot for {info_model}: k={sweet.k}, {sweet.payload_bytes:.0f} B per inference (trial {sweet.trial})"
    kept = [p for p, ok in zip(images, within, strict=True) if ok]
    if kept:
        image = min(kept, key=lambda p: p.payload_bytes)
        ratio = image.payload_bytes / sweet.payload_bytes
        text += f"; the smallest image codec within 1 point ({image.label}) needs {image.payload_bytes:.0f} B, "
        text += f"{ratio:.1f}x the sweet spot" if ratio >= 1 else f"less than any split tried ({1 / ratio:.1f}x less)"
    else:
        text += "; no image codec trial of this model is within 1 point"
    if missing:
        text += f"; untried or over tolerance at k = {', '.join(map(str, missing))}"
    return text


def compression_info(results: StudyResults, spec: str, input_size: int) -> CompressionInfo:
    ref = uncompressed_accuracy(results, spec, input_size)
    trials = [t for t in results.complete if t.model == spec and t.input_size == input_size]
    all_rows = split_rows(results, spec, input_size)
    inner = activation_ks(results, spec, all_rows)
    smallest: dict[int, TrialRecord] = {}
    for t in trials:
        if t.k is None or t.place != ACTIVATION or not _within(t, ref.accuracy):
            continue
        if t.k not in smallest or (t.payload_bytes or 0) < (smallest[t.k].payload_bytes or 0):
            smallest[t.k] = t
    points = [_point(smallest[k]) for k in sorted(smallest)]
    images = sorted((t for t in trials if t.k == 0), key=lambda t: t.payload_bytes or 0)
    image_points = [_point(t) for t in images]
    within = [_within(t, ref.accuracy) for t in images]
    rows = [r for r in all_rows if r.k in inner]
    sweet = min(points, key=lambda p: (p.payload_bytes, p.k)) if points else None
    missing = [k for k in inner if k not in smallest]
    label = model_label(spec, input_size)
    learned = sorted((t for t in trials if t.learned), key=lambda t: (t.k or 0, t.payload_bytes or 0))
    return CompressionInfo(
        label,
        spec,
        input_size,
        ref.accuracy,
        ref.source,
        points,
        missing,
        [r.k for r in rows],
        [r.activation_bytes_fp16 for r in rows],
        image_points,
        within,
        sweet,
        _message(label, sweet, image_points, within, missing),
        tuple(_point(t) for t in learned),
        tuple(_within(t, ref.accuracy) for t in learned),
    )


def best_model(results: StudyResults) -> tuple[str, int] | None:
    """The model of pareto.json's ``best``; else the one with the highest uncompressed accuracy."""
    best = results.summary.get("best")
    if best and "model" in best["params"]:
        return str(best["params"]["model"]), int(best["params"]["input_size"])
    scored = [(uncompressed_accuracy(results, a, s).accuracy, (a, s)) for a, s in models_of(results)]
    scored = [(acc, model) for acc, model in scored if acc is not None]
    return max(scored)[1] if scored else None


def compression_infos(results: StudyResults) -> list[CompressionInfo]:
    """One per model with completed trials, the best model first (the figure shows it first)."""
    first = best_model(results)
    tried = {(str(t.model), int(t.input_size)) for t in results.complete if t.model is not None and t.input_size}
    order = sorted(tried, key=lambda m: (m != first, m[0], -m[1]))
    return [compression_info(results, spec, size) for spec, size in order]
