"""Figure data for the "triple trade-off" (Assine et al., Fig. 1).

One series per (model spec, input size) and one point per split the search offered it, from the
input (k = 0) to the last activation (the all-local split sends a class id, not an activation):
x = device MACs of the head, y = the uncompressed (float32) activation that would cross the
network, colour = the model's uncompressed val accuracy (see ``uncompressed_accuracy``). The hover
also gives the best compressed trial the study found at that k, so the reader sees what
compression did with that activation.
"""

from __future__ import annotations

from typing import NamedTuple

from optimizer.report._layers import activation_ks, models_of, split_rows, uncompressed_accuracy
from optimizer.report._records import StudyResults, describe, model_label

__all__ = ["ACCURACY_MEANING", "ModelSeries", "TradeoffInfo", "tradeoff_info"]

ACCURACY_MEANING = (
    "colour: the model's val accuracy with a lossless link (its all-local trial, the last k, which sends only "
    "the class id; else its float16 trial); grey: no such trial in the study"
)


class ModelSeries(NamedTuple):
    label: str
    spec: str
    input_size: int
    k: list[int]
    macs_m: list[float]  # millions of MACs on the device
    activation_kb: list[float]  # float32 activation, KB = 1000 B
    hover: list[str]
    accuracy: float | None
    accuracy_source: str


class TradeoffInfo(NamedTuple):
    series: list[ModelSeries]
    accuracy_meaning: str


def _best_at(results: StudyResults, spec: str, size: int) -> dict[int, str]:
    """k -> the most accurate compressed trial of this model at k, in words."""
    best: dict[int, tuple[float, str]] = {}
    for t in results.complete:
        if t.model != spec or t.input_size != size or t.k is None or t.accuracy is None:
            continue
        text = f"best trial here: {t.number} ({describe(t)}): {t.accuracy:.4f}, {t.payload_bytes:.0f} B"
        if t.k not in best or t.accuracy > best[t.k][0]:
            best[t.k] = (t.accuracy, text)
    return {k: text for k, (_, text) in best.items()}


def tradeoff_info(results: StudyResults) -> TradeoffInfo:
    series = []
    for spec, size in models_of(results):
        all_rows = split_rows(results, spec, size)
        shown = {0, *activation_ks(results, spec, all_rows)}
        rows = [r for r in all_rows if r.k in shown]
        acc = uncompressed_accuracy(results, spec, size)
        best = _best_at(results, spec, size)
        hover = []
        for r in rows:
            ms = f", {r.latency_ms:.2f} ms on the device" if r.latency_ms is not None else ""
            accuracy = f"{acc.accuracy:.4f}" if acc.accuracy is not None else "not measured"
            hover.append(
                f"<b>{model_label(spec, size)}, k={r.k}</b> ({r.layer}, shape {'x'.join(map(str, r.shape))})<br>"
                f"head: {r.cum_macs / 1e6:.2f} M MACs{ms}<br>"
                f"activation {r.activation_bytes_fp32 / 1000:.1f} KB float32<br>"
                f"uncompressed val accuracy {accuracy} ({acc.source})<br>"
                f"{best.get(r.k, 'no trial of this model at this k')}"
            )
        series.append(
            ModelSeries(
                model_label(spec, size),
                spec,
                size,
                [r.k for r in rows],
                [r.cum_macs / 1e6 for r in rows],
                [r.activation_bytes_fp32 / 1000 for r in rows],
                hover,
                acc.accuracy,
                acc.source,
            )
        )
    return TradeoffInfo(series, ACCURACY_MEANING)
