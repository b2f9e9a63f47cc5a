"""Building an adaptive bundle's policy from a study's candidates (export time; needs optimizer.system).

The choice at each rate is the bandwidth sweep's (optimizer.system.bandwidth_sweep: the study's rule,
highest val accuracy meeting every constraint there, ties: lower e2e_ms, from each trial's stored
terms), for the deadline given at export. The sweep samples rates; so that the ranges' boundaries
are exact rather than one sample apart, the sampled rates also hold every candidate's own minimum
rate (under the model a candidate meets the deadline from one rate on: its e2e falls with the rate)
and the rates where two equally accurate winners' e2e cross, where the choice can change.

``min_range_ratio`` > 1 trades a little accuracy for fewer configurations: a range whose top is less
than that ratio above its bottom (narrower than a device can tell rates apart) is run by the
configuration of the range below it, which meets the deadline there too (a configuration that meets
it at one rate meets it at every higher one); configurations left without a range are dropped.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from optimizer.errors import UserError
from optimizer.system import SweepCandidate, bandwidth_sweep, sweep_rates

__all__ = ["PolicyPlan", "build_policy", "min_rate_kbps"]

RULE = "highest val accuracy meeting every constraint at the rate (ties: lower e2e_ms), by the bandwidth sweep"
_NUDGE = 1 + 1e-9  # just above a boundary, where the new choice holds


@dataclass(frozen=True)
class PolicyPlan:
    trials: list[int]  # by tag
    doc: dict[str, Any]  # the manifest's ``policy``


def _fixed_ms(c: SweepCandidate) -> float:
    """Everything in e2e_ms but the uplink's serialization (as optimizer.system's sweep prices it)."""
    terms = ("head_ms", "coding_ms", "rtt_ms", "downlink_ms", "request_ms", "decode_ms", "tail_ms")
    return sum(c.costs[term] for term in terms)


def min_rate_kbps(c: SweepCandidate, deadline_ms: float | None, frame_ms: float | None) -> float | None:
    """The lowest uplink rate at which ``c`` meets every constraint (None: at no rate)."""
    device = c.costs["head_ms"] + c.costs["coding_ms"]
    if not c.static_ok or (frame_ms is not None and device > frame_ms):
        return None
    budgets = [] if frame_ms is None else [frame_ms]  # the uplink's serialization of one frame
    if deadline_ms is not None:
        budgets.append(deadline_ms - _fixed_ms(c))
    if budgets and min(budgets) <= 0:
        return None
    return c.costs["wire_bytes"] * 8 / min(budgets) if budgets else 0.0


def _crossings(winners: list[SweepCandidate]) -> list[float]:
    """Rates where two equally accurate winners' e2e are equal (e2e = fixed + bits / rate)."""
    rates = []
    for i, a in enumerate(winners):
        for b in winners[i + 1 :]:
            if a.accuracy == b.accuracy and _fixed_ms(a) != _fixed_ms(b):
                rate = (a.costs["wire_bytes"] - b.costs["wire_bytes"]) * 8 / (_fixed_ms(b) - _fixed_ms(a))
                if rate > 0:
                    rates += [rate / _NUDGE, rate * _NUDGE]
    return rates


def _sweep(
    candidates: Sequence[SweepCandidate], deadline: float | None, frame: float | None, low: float, high: float
) -> list[dict[str, Any]]:
    mins = [m for c in candidates if (m := min_rate_kbps(c, deadline, frame)) is not None]
    rates = {r for r in (*sweep_rates(low, high), *(m * _NUDGE for m in mins)) if low <= r <= high}
    won: set[int | None] = set()
    while True:  # a crossing can reveal a winner between two samples, whose own crossings come next
        rows = bandwidth_sweep(candidates, deadline, frame, sorted(rates))
        if {r["trial"] for r in rows} == won:
            return rows
        won = {r["trial"] for r in rows}
        rates |= {r for r in _crossings([c for c in candidates if c.trial in won]) if low <= r <= high}


def _runs(rows: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """(first, last) row index of each run of rows with the same choice."""
    runs, start = [], 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or rows[i]["trial"] != rows[start]["trial"]:
            runs.append((start, i - 1))
            start = i
    return runs


def _fold_narrow(rows: list[dict[str, Any]], by_trial: dict[int, SweepCandidate], ratio: float) -> None:
    """Give each feasible range narrower than ``ratio`` to the configuration of the range below it."""
    runs = _runs(rows)
    kept: int | None = None
    for (a, b), following in itertools.zip_longest(runs, runs[1:]):
        trial = rows[a]["trial"]
        if trial is None or following is None:
            kept = trial if trial is not None else kept
            continue
        narrow = rows[following[0]]["uplink_kbps"] < ratio * rows[a]["uplink_kbps"]
        if kept is None or not narrow:
            kept = trial
            continue
        for row in rows[a : b + 1]:  # the configuration below meets the deadline here too
            row["trial"], row["accuracy"] = kept, by_trial[kept].accuracy
            row["e2e_ms"] = _fixed_ms(by_trial[kept]) + by_trial[kept].costs["wire_bytes"] * 8 / row["uplink_kbps"]


def _tags(trials: list[int], rows: list[dict[str, Any]], study_kbps: float | None) -> list[int]:
    """Tag order: 0 is the choice at the study's own uplink (what a reader of single bundles runs),
    then the others from the lowest rate up."""
    first = next((r["trial"] for r in rows if study_kbps is not None and r["uplink_kbps"] >= study_kbps), None)
    first = first if first is not None else next(r["trial"] for r in reversed(rows) if r["trial"] is not None)
    return [first, *(t for t in trials if t != first)]


def build_policy(
    candidates: Sequence[SweepCandidate],
    deadline_ms: float | None,
    frame_ms: float | None,
    network: dict[str, Any],
    transport: str,
    low_kbps: float = 10.0,
    high_kbps: float = 1e6,
    min_range_ratio: float = 1.0,
) -> PolicyPlan:
    """The policy over ``low_kbps``..``high_kbps`` (extended to 0 and infinity by its end ranges)."""
    if deadline_ms is None and frame_ms is None:
        raise UserError("an adaptive bundle needs a deadline: give --max-latency-ms or --fps")
    rows = _sweep(candidates, deadline_ms, frame_ms, low_kbps, high_kbps)
    by_trial = {c.trial: c for c in candidates}
    if min_range_ratio > 1:
        _fold_narrow(rows, by_trial, min_range_ratio)
    order = list(dict.fromkeys(r["trial"] for r in rows if r["trial"] is not None))
    if not order:
        raise UserError(
            f"no configuration of the study meets every constraint at any uplink rate from {low_kbps:g} to "
            f"{high_kbps:g} kbps with a {deadline_ms or frame_ms:g} ms deadline; relax --max-latency-ms / --fps"
        )
    mins = {t: min_rate_kbps(by_trial[t], deadline_ms, frame_ms) or 0.0 for t in order}
    fallback = min(order, key=lambda t: mins[t])  # where nothing meets the deadline: the one needing the least
    trials = _tags(order, rows, network.get("uplink_kbps"))
    tag = {t: i for i, t in enumerate(trials)}
    ranges = []
    for n, (a, b) in enumerate(_runs(rows)):
        trial = rows[a]["trial"]
        ranges.append(
            {
                "low_kbps": 0.0 if n == 0 else rows[a]["uplink_kbps"],
                "high_kbps": None,  # filled below: the next range's low
                "tag": tag[fallback if trial is None else trial],
                "trial": fallback if trial is None else trial,
                "meets_deadline": trial is not None,
                "val_accuracy": by_trial[fallback if trial is None else trial].accuracy,
                "e2e_ms": None if trial is None else [rows[a]["e2e_ms"], rows[b]["e2e_ms"]],
            }
        )
    for this, following in itertools.pairwise(ranges):
        this["high_kbps"] = following["low_kbps"]
    configs = [
        {
            "tag": tag[t],
            "trial": t,
            "min_kbps": mins[t],
            "val_accuracy": by_trial[t].accuracy,
            "fixed_ms": _fixed_ms(by_trial[t]),  # e2e_ms at a rate r: fixed_ms + wire_bytes x 8 / r
            "wire_bytes": by_trial[t].costs["wire_bytes"],
        }
        for t in trials
    ]
    doc = {
        "rule": RULE,
        "deadline_ms": deadline_ms,
        "frame_ms": frame_ms,
        "fps": 1000.0 / frame_ms if frame_ms else None,
        "transport": transport,
        "network": network,
        "range_kbps": [low_kbps, high_kbps],
        "min_range_ratio": min_range_ratio,
        "ranges": ranges,
        "configurations": sorted(configs, key=lambda c: c["tag"]),
        "sweep": [{k: r[k] for k in ("uplink_kbps", "trial", "accuracy", "e2e_ms")} for r in rows],
    }
    return PolicyPlan(trials, doc)
