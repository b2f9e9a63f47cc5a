"""Figure data for the latency breakdown of the Pareto set: where each entry's e2e_ms goes.

Each entry's stored system-model terms (``costs``, PathCosts.parts()) are grouped into five
segments that add up to its e2e_ms: device compute (the head), device coding (every device-side
codec step), transfer (the request over the uplink plus the answer over the downlink), the round
trip, and the server (request handling, decode, tail). Entries are sorted by e2e_ms, fastest
first. Trials from before the system model stored no terms; they are counted and named instead.
"""

from __future__ import annotations

from typing import NamedTuple

from optimizer.report._records import StudyResults, TrialRecord, describe

__all__ = ["SEGMENTS", "BreakdownInfo", "BreakdownRow", "breakdown_info"]

# segment -> the PathCosts terms it adds up
SEGMENTS: dict[str, tuple[str, ...]] = {
    "device compute": ("head_ms",),
    "device coding": ("coding_ms",),
    "transfer": ("uplink_ms", "downlink_ms"),
    "round trip": ("rtt_ms",),
    "server": ("request_ms", "decode_ms", "tail_ms"),
}


class BreakdownRow(NamedTuple):
    trial: int
    label: str  # "trial 12: alpha=1 size=96 k=7 pca ..."
    segments: dict[str, float]  # SEGMENTS order, ms
    e2e_ms: float  # the trial's recorded e2e_ms (the segments add up to it)
    detail: str  # the terms in words, for the hover


class BreakdownInfo(NamedTuple):
    rows: list[BreakdownRow]  # increasing e2e_ms
    deadline_ms: float | None
    best_trial: int | None
    missing: list[int]  # Pareto trials without stored terms
    note: str


def _detail(costs: dict[str, float]) -> str:
    return (
        f"head {costs['head_ms']:.3g} ms, coding {costs['coding_ms']:.3g} ms; "
        f"uplink {costs['uplink_ms']:.3g} ms for {costs['wire_bytes']:.0f} B, "
        f"downlink {costs['downlink_ms']:.3g} ms for {costs['answer_bytes']:.0f} B, RTT {costs['rtt_ms']:.3g} ms; "
        f"server: request {costs['request_ms']:.3g} + decode {costs['decode_ms']:.3g} + tail {costs['tail_ms']:.3g} ms"
    )


def _row(record: TrialRecord, costs: dict[str, float]) -> BreakdownRow:
    segments = {name: sum(costs[term] for term in terms) for name, terms in SEGMENTS.items()}
    e2e = record.metric("e2e_ms")
    total = sum(segments.values())
    return BreakdownRow(
        record.number,
        f"trial {record.number}: {describe(record)}",
        segments,
        float(e2e) if e2e is not None else total,
        _detail(costs),
    )


def breakdown_info(results: StudyResults) -> BreakdownInfo:
    by_number = {t.number: t for t in results.trials}
    rows, missing = [], []
    for n in sorted(results.pareto_trials):
        record = by_number.get(n)
        if record is None or not record.complete:
            continue
        if record.costs is None:
            missing.append(n)
        else:
            rows.append(_row(record, record.costs))
    rows.sort(key=lambda r: (r.e2e_ms, r.trial))
    best = results.summary.get("best")
    note = ""
    if missing:
        note = (
            f"{len(missing)} of the Pareto entries have no stored latency terms (trials from before the system "
            "model); a new study (another --study name) prices every trial"
        )
    return BreakdownInfo(rows, results.deadline_ms, int(best["trial"]) if best else None, missing, note)
