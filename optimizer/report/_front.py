"""Figure data for the Pareto front (3-D) and its two 2-D projections, with their staircases.

Every completed trial is a point, in exactly one group: the Pareto set (pareto.json's entries),
the other feasible trials, or the infeasible ones (Optuna's constraints: over the payload budget,
out of device memory, past a deadline or below a minimum accuracy). Payloads are in KB = 1000 B.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from optimizer.report._records import StudyResults, TrialRecord, describe
from optimizer.search import N_BLOCKS

__all__ = ["FrontInfo", "PointGroup", "ProjectionInfo", "Staircase", "front_info", "projection_info", "staircase"]

GROUPS = ("Pareto set", "feasible", "infeasible")


class PointGroup(NamedTuple):
    name: str  # one of GROUPS
    trials: list[int]
    accuracy: list[float]
    payload_kb: list[float]
    latency_ms: list[float]
    k: list[int]
    hover: list[str]  # the full configuration and metrics (HTML line breaks for Plotly)


class FrontInfo(NamedTuple):
    groups: list[PointGroup]  # all three, possibly empty
    budget_kb: float | None
    max_latency_ms: float | None


class Staircase(NamedTuple):
    """The 2-D non-dominated points (accuracy up, cost down), in increasing cost."""

    cost: list[float]
    accuracy: list[float]
    trials: list[int]
    over: str  # which trials it was computed over: "feasible" or "all (none is feasible)"


class ProjectionInfo(NamedTuple):
    """Two staircases per plane: over every trial, and over the true splits 1 <= k <= n only.

    # NOTE: the extremes win each plane alone: the all-local split sends a 13-byte class id at full
    # accuracy, and k = 0 costs the device nothing; so the first staircase is often one or two
    # points, and the second shows the trade-off among the splits proper.
    """

    front: FrontInfo
    payload: Staircase  # accuracy vs payload KB
    latency: Staircase  # accuracy vs device latency ms
    payload_splits: Staircase
    latency_splits: Staircase


def _group_of(record: TrialRecord, pareto: frozenset[int]) -> str:
    if record.number in pareto:
        return "Pareto set"
    return "feasible" if record.feasible else "infeasible"


def _why_infeasible(record: TrialRecord) -> str:
    reasons = [
        r for r, bad in (("over budget", not record.within_budget), ("out of memory", not record.fits_memory)) if bad
    ]
    return "infeasible: " + (", ".join(reasons) or "past the deadline or below the minimum accuracy")


def hover_text(record: TrialRecord, entry: dict[str, Any] | None) -> str:
    """Everything about one trial, for a hover box."""
    lines = [f"<b>trial {record.number}</b>: {describe(record)}"]
    ci = record.accuracy_ci
    interval = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
    lines.append(f"val accuracy {record.accuracy:.4f}{interval} (n={record.val_samples})")
    if entry is not None:
        lo, hi = entry["test_accuracy_ci"]
        lines.append(f"test accuracy {entry['test_accuracy']:.4f} [{lo:.3f}, {hi:.3f}]")
    p95 = f", p95 {record.payload_bytes_p95:.0f} B" if record.payload_bytes_p95 is not None else ""
    lines.append(f"payload mean {record.payload_bytes:.0f} B{p95}")
    macs = f", {record.device_macs / 1e6:.1f} M MACs" if record.device_macs is not None else ""
    lines.append(f"device {record.latency_ms:.2f} ms{macs}")
    lines.append("feasible" if record.feasible else _why_infeasible(record))
    return "<br>".join(lines)


def front_info(results: StudyResults) -> FrontInfo:
    """The completed trials in their three groups, with the budget (and deadline) to draw."""
    entries = {int(e["trial"]): e for e in results.summary.get("pareto") or []}
    groups = {name: PointGroup(name, [], [], [], [], [], []) for name in GROUPS}
    for record in results.complete:
        group = groups[_group_of(record, results.pareto_trials)]
        group.trials.append(record.number)
        group.accuracy.append(float(record.accuracy or 0.0))
        group.payload_kb.append(float(record.payload_bytes or 0.0) / 1000)
        group.latency_ms.append(float(record.latency_ms or 0.0))
        group.k.append(int(record.k or 0))
        group.hover.append(hover_text(record, entries.get(record.number)))
    budget = results.budget_bytes
    deadline = results.summary.get("max_latency_ms")
    return FrontInfo(list(groups.values()), budget / 1000 if budget is not None else None, deadline)


def staircase(points: list[tuple[float, float, int]], over: str) -> Staircase:
    """Non-dominated (cost, accuracy, trial) points: lower cost and higher accuracy are better."""
    out = Staircase([], [], [], over)
    best = float("-inf")
    for cost, accuracy, trial in sorted(points, key=lambda p: (p[0], -p[1], p[2])):
        if accuracy > best:
            best = accuracy
            out.cost.append(cost)
            out.accuracy.append(accuracy)
            out.trials.append(trial)
    return out


def projection_info(results: StudyResults) -> ProjectionInfo:
    """The front plus the 2-D staircases, over the feasible trials (all of them if none is)."""
    done = results.complete
    pool = [r for r in done if r.feasible] or done
    over = "feasible" if any(r.feasible for r in done) else "all, none is feasible"
    splits = [r for r in pool if r.k is not None and 1 <= r.k <= N_BLOCKS]
    return ProjectionInfo(
        front_info(results),
        staircase(_points(pool, "payload"), over),
        staircase(_points(pool, "latency"), over),
        staircase(_points(splits, "payload"), f"{over}, 1 <= k <= {N_BLOCKS}"),
        staircase(_points(splits, "latency"), f"{over}, 1 <= k <= {N_BLOCKS}"),
    )


def _points(records: list[TrialRecord], cost: str) -> list[tuple[float, float, int]]:
    if cost == "payload":
        return [(float(r.payload_bytes or 0) / 1000, float(r.accuracy or 0), r.number) for r in records]
    return [(float(r.latency_ms or 0), float(r.accuracy or 0), r.number) for r in records]
