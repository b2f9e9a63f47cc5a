"""Figure data for parallel coordinates: the parameters of every completed trial against its
objectives (by name, as the study chose them), one line per trial.

Parameters that a codec does not have are drawn at 0 and labelled "n/a" (Plotly's parallel
coordinates cannot leave a gap). Bits: the PCA quantizer's bits, 16 for float16. Payload is drawn
as log10 of the bytes (its spread is four orders of magnitude), with byte tick labels.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from optimizer.codecs import CODECS, INPUT, PLACES
from optimizer.report._axes import axis_of
from optimizer.report._records import StudyResults, TrialRecord

__all__ = ["CODEC_ORDER", "Dimension", "ParallelInfo", "parallel_info"]

# Codecs in the order of the place they code at (input, activation, output), then by registry order.
CODEC_ORDER = tuple(kind for place in PLACES for kind, codec in CODECS.items() if codec.place == place)


class Dimension(NamedTuple):
    label: str
    values: list[float]
    tickvals: list[float] | None = None  # None: Plotly picks the ticks
    ticktext: list[str] | None = None


class ParallelInfo(NamedTuple):
    dimensions: list[Dimension]
    feasible: list[int]  # 1 feasible, 0 infeasible: the line colour
    trials: list[int]


def _bits(t: TrialRecord) -> float:
    return 16.0 if t.uncompressed else float(t.codec.get("bits") or 0)  # the reference sends float16


def _optional(values: list[float], label: str) -> Dimension:
    """A parameter only some codecs have: 0 is 'n/a'."""
    ticks = sorted(set(values))
    return Dimension(label, values, ticks, ["n/a" if v == 0 else f"{v:g}" for v in ticks])


def _log_payload(values: list[float]) -> Dimension:
    logs = [math.log10(max(v, 1.0)) for v in values]
    if not logs:
        return Dimension("payload B (log)", logs)
    ticks = list(range(math.floor(min(logs)), math.ceil(max(logs)) + 1))
    return Dimension("payload B (log)", logs, [float(t) for t in ticks], [f"{10**t:g}" for t in ticks])


def _objective(name: str, done: list[TrialRecord]) -> Dimension:
    """One axis per objective of the study, by name (a trial that lacks the metric shows 0)."""
    if name == "payload_bytes":
        return _log_payload([float(t.payload_bytes or 0) for t in done])
    axis = axis_of(name)
    return Dimension(axis.label, [float(axis.shown(t.metric(name)) or 0) for t in done])


def parallel_info(results: StudyResults) -> ParallelInfo:
    done = results.complete
    codecs = [t.kind for t in done]
    codec_ticks = [c for c in CODEC_ORDER if c in codecs] + sorted(set(codecs) - set(CODEC_ORDER))
    models = sorted({str(t.model) for t in done})
    dims = [
        Dimension(
            "model", [float(models.index(str(t.model))) for t in done], [float(i) for i in range(len(models))], models
        ),
        Dimension("input size", [float(t.input_size or 0) for t in done]),
        Dimension("split k", [float(t.k or 0) for t in done]),
        Dimension(
            "codec",
            [float(codec_ticks.index(c)) for c in codecs],
            [float(i) for i in range(len(codec_ticks))],
            codec_ticks,
        ),
        _optional([float(t.codec.get("components") or 0) for t in done], "PCA components"),
        _optional([_bits(t) for t in done], "bits"),
        _optional([float(t.codec.get("quality") or 0) if t.place == INPUT else 0.0 for t in done], "image quality"),
        *[_objective(name, done) for name in results.objectives],
    ]
    return ParallelInfo(dims, [int(t.feasible) for t in done], [t.number for t in done])
