"""Figure and table data for the bandwidth sweep: the best configuration at each uplink rate.

The rows come from pareto.json's ``bandwidth_sweep`` (optimizer.system.bandwidth_sweep: the stored
terms of every completed trial re-priced at each rate, nothing re-evaluated; the best at a rate is
the highest val accuracy meeting every constraint there, ties: lower e2e_ms). Here they become
the curve of e2e_ms and energy_mj over the rate, the rates where the choice changes, the rates
where nothing is feasible, and the policy: rate range -> configuration, the table a
bandwidth-adaptive device follows. Where an adaptive bundle was exported from the study
(``split-opt export --adaptive`` writes ``adaptive-policy.json`` beside pareto.json), the policy is
that bundle's (its deadline, exact boundaries, configuration tags), not the sweep's.
"""

from __future__ import annotations

import json
import math
from typing import Any, NamedTuple

from optimizer.report._records import StudyResults, describe

__all__ = ["ADAPTIVE_POLICY", "PolicyRow", "SweepChange", "SweepInfo", "sweep_info"]

NONE_LABEL = "no feasible configuration"
ADAPTIVE_POLICY = "adaptive-policy.json"  # written by `split-opt export --adaptive` into the study's folder


class SweepChange(NamedTuple):
    rate_kbps: float  # the first sampled rate with the new choice
    previous: int | None
    trial: int | None  # None: nothing is feasible from this rate on
    label: str


class PolicyRow(NamedTuple):
    low_kbps: float  # first and last sampled rate with this choice
    high_kbps: float
    trial: int | None
    label: str
    accuracy: float | None
    e2e_ms: tuple[float, float] | None  # at the low and at the high end of the range
    tag: int | None = None  # an adaptive bundle's configuration tag
    meets_deadline: bool = True  # False: nothing meets it here; an adaptive bundle runs its least demanding


class SweepInfo(NamedTuple):
    rates_kbps: list[float]
    trials: list[int | None]  # the choice at each rate
    labels: list[str]  # the configuration in words ("no feasible configuration" where none is)
    e2e_ms: list[float | None]
    energy_mj: list[float | None]
    changes: list[SweepChange]
    policy: list[PolicyRow]  # consecutive rates with the same choice, increasing rate
    infeasible: list[tuple[float, float]]  # (first, last) sampled rates of each run with no feasible choice
    link_kbps: float | None  # the study's own uplink
    link_name: str
    deadline_ms: float | None
    note: str  # why the figure is empty or partly empty ("" otherwise)
    policy_source: str = ""  # "": the sweep's own policy; else the adaptive bundle it comes from


def _rows(results: StudyResults) -> list[dict[str, Any]]:
    rows = results.summary.get("bandwidth_sweep")
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def _policy(rates: list[float], rows: list[dict[str, Any]], labels: list[str]) -> list[PolicyRow]:
    policy: list[PolicyRow] = []
    start = 0
    for i in range(1, len(rows) + 1):
        if i < len(rows) and rows[i]["trial"] == rows[start]["trial"]:
            continue
        first, last = rows[start], rows[i - 1]
        e2e = (float(first["e2e_ms"]), float(last["e2e_ms"])) if first["trial"] is not None else None
        policy.append(PolicyRow(rates[start], rates[i - 1], first["trial"], labels[start], first["accuracy"], e2e))
        start = i
    return policy


def _note(rows: list[dict[str, Any]], infeasible: list[tuple[float, float]]) -> str:
    if not rows:
        return (
            "pareto.json has no bandwidth sweep (a study from before the system model, or the search stopped "
            "before its summary); run the search again with the same --study to write it"
        )
    if len(infeasible) == 1 and infeasible[0] == (rows[0]["uplink_kbps"], rows[-1]["uplink_kbps"]):
        return "no configuration meets every constraint at any uplink rate from 10 kbps to 1 Gbps"
    if infeasible:
        spans = ", ".join(f"{lo:g}-{hi:g} kbps" if lo != hi else f"{lo:g} kbps" for lo, hi in infeasible)
        return f"no configuration meets every constraint at {spans}"
    return ""


def _exported_policy(results: StudyResults) -> tuple[list[PolicyRow], str] | None:
    """The policy of the adaptive bundle exported from this study, if there is one (and it reads)."""
    path = results.report_dir / ADAPTIVE_POLICY
    try:
        doc = json.loads(path.read_text())
        by_number = {t.number: t for t in results.trials}
        rows = []
        for r in doc["policy"]["ranges"]:
            trial = int(r["trial"])
            label = describe(by_number[trial]) if trial in by_number else f"trial {trial}"
            high = math.inf if r["high_kbps"] is None else float(r["high_kbps"])
            e2e = (float(r["e2e_ms"][0]), float(r["e2e_ms"][1])) if r.get("e2e_ms") else None
            rows.append(
                PolicyRow(float(r["low_kbps"]), high, trial, label, float(r["val_accuracy"]), e2e, int(r["tag"]),
                          bool(r["meets_deadline"]))
            )  # fmt: skip
        policy = doc["policy"]
        fps = f", {policy['fps']:g} fps" if policy.get("fps") else ""
        source = f"the adaptive bundle {doc['bundle']} ({policy['deadline_ms']:g} ms deadline{fps})"
    except (OSError, ValueError, KeyError, TypeError):
        return None  # none exported, or from another version: the sweep's own policy
    return rows, source


def sweep_info(results: StudyResults) -> SweepInfo:
    rows = _rows(results)
    by_number = {t.number: t for t in results.trials}
    rates = [float(r["uplink_kbps"]) for r in rows]
    trials = [r.get("trial") for r in rows]
    labels = [NONE_LABEL if t is None else (describe(by_number[t]) if t in by_number else f"trial {t}") for t in trials]
    changes = [
        SweepChange(rates[i], trials[i - 1] if i else None, trials[i], labels[i])
        for i, r in enumerate(rows)
        if r.get("changed")
    ]
    policy = _policy(rates, rows, labels)
    infeasible = [(p.low_kbps, p.high_kbps) for p in policy if p.trial is None]
    exported = _exported_policy(results)
    source = ""
    if exported is not None:
        policy, source = exported
    link = results.device.network if results.device is not None else None
    return SweepInfo(
        rates,
        trials,
        labels,
        [r.get("e2e_ms") for r in rows],
        [r.get("energy_mj") for r in rows],
        changes,
        policy,
        infeasible,
        link.uplink_kbps.value if link is not None else None,
        str(results.summary.get("network") or (link.name if link is not None else "")),
        results.deadline_ms,
        _note(rows, infeasible),
        source,
    )
