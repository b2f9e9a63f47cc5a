"""Figure data for the Pareto front (3-D) and its two 2-D projections, with their staircases.

Every completed trial is a point, in exactly one group: the Pareto set (pareto.json's entries),
the other feasible trials, or the infeasible ones (Optuna's constraints: over the payload budget,
out of device memory, past a deadline, over an energy cap or below a minimum accuracy). The axes
are metrics by name (see _axes.plot_axes): by default x = mean payload KB, y = device ms,
vertical = val accuracy; a study with other objectives gets its own.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from optimizer.codecs import ACTIVATION
from optimizer.report._axes import Axis, Limit, limits_of, plot_axes
from optimizer.report._records import StudyResults, TrialRecord, describe

__all__ = ["FrontInfo", "PointGroup", "ProjectionInfo", "Staircase", "front_info", "projection_info", "staircase"]

GROUPS = ("Pareto set", "feasible", "infeasible")

_REASONS = {
    "payload_over_budget": "over budget",
    "memory_overflow": "out of memory",
    "e2e_over_deadline": "past the deadline",
    "latency_over_deadline": "past the deadline",
    "device_over_frame": "device slower than the frame rate",
    "link_over_frame": "link slower than the frame rate",
    "energy_over_cap": "over the energy cap",
    "accuracy_below_minimum": "below the minimum accuracy",
}


class PointGroup(NamedTuple):
    name: str  # one of GROUPS
    trials: list[int]
    values: dict[str, list[float | None]]  # metric -> shown values (the axis' unit), one per trial
    k: list[int]
    hover: list[str]  # the full configuration and metrics (HTML line breaks for Plotly)


class FrontInfo(NamedTuple):
    groups: list[PointGroup]  # all three, possibly empty
    axes: tuple[Axis, Axis, Axis]  # x, y, vertical
    limits: dict[str, Limit]  # metric -> the study's bound on it, in the axis' unit
    note: str  # why the axes are not exactly the study's objectives ("" when they are)


class Staircase(NamedTuple):
    """The 2-D non-dominated points of one plane, in order along its horizontal axis (better first)."""

    cost: list[float]  # the horizontal metric (shown unit)
    accuracy: list[float]  # the vertical metric
    trials: list[int]
    over: str  # which trials it was computed over: "feasible" or "all (none is feasible)"


class ProjectionInfo(NamedTuple):
    """Two staircases per plane (vertical metric against x, then against y): over every trial, and
    over the true splits 1 <= k <= n only.

    # NOTE: the extremes win each plane alone: the all-local split sends a 13-byte class id at full
    # accuracy, and k = 0 runs no head on the device; so the first staircase is often one or two
    # points, and the second shows the trade-off among the splits proper.
    """

    front: FrontInfo
    payload: Staircase  # vertical vs x (by default accuracy vs payload KB)
    latency: Staircase  # vertical vs y (by default accuracy vs device ms)
    payload_splits: Staircase
    latency_splits: Staircase


def _group_of(record: TrialRecord, pareto: frozenset[int]) -> str:
    if record.number in pareto:
        return "Pareto set"
    return "feasible" if record.feasible else "infeasible"


def _why_infeasible(record: TrialRecord) -> str:
    reasons = [_REASONS.get(name, name) for name in record.violated]
    return "infeasible: " + (", ".join(dict.fromkeys(reasons)) or "a constraint not recorded by name")


def _path_line(record: TrialRecord) -> str | None:
    m = record.metrics
    if "e2e_ms" not in m:
        return None
    return (
        f"device {m.get('device_ms', 0):.2f} + transfer {m.get('transfer_ms', 0):.2f} + server "
        f"{m.get('server_ms', 0):.2f} = e2e {m['e2e_ms']:.2f} ms"
    )


def hover_text(record: TrialRecord, entry: dict[str, Any] | None) -> str:
    """Everything about one trial, for a hover box."""
    lines = [f"<b>trial {record.number}</b>: {describe(record)}"]
    ci = record.accuracy_ci
    interval = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
    lines.append(f"val accuracy {record.accuracy or 0:.4f}{interval} (n={record.val_samples})")
    if entry is not None and entry.get("test_accuracy") is not None:
        lo, hi = entry.get("test_accuracy_ci") or (0.0, 1.0)
        lines.append(f"test accuracy {entry['test_accuracy']:.4f} [{lo:.3f}, {hi:.3f}]")
    p95 = f", p95 {record.payload_bytes_p95:.0f} B" if record.payload_bytes_p95 is not None else ""
    wire = record.metric("wire_bytes")
    lines.append(
        f"payload mean {record.payload_bytes or 0:.0f} B{p95}" + (f", {wire:.0f} B on the link" if wire else "")
    )
    path = _path_line(record)
    macs = f", {record.device_macs / 1e6:.1f} M MACs" if record.device_macs is not None else ""
    lines.append(path + macs if path else f"device {record.device_ms or 0:.2f} ms{macs}")
    energy = record.metric("energy_mj")
    if energy is not None:
        lines.append(f"energy {energy:.3g} mJ on the device")
    lines.append("feasible" if record.feasible else _why_infeasible(record))
    return "<br>".join(lines)


def front_info(results: StudyResults) -> FrontInfo:
    """The completed trials in their three groups, on the study's axes, with its limits to draw."""
    axes, note = plot_axes(results.objectives)
    entries = {int(e["trial"]): e for e in results.summary.get("pareto") or []}
    groups = {name: PointGroup(name, [], {a.metric: [] for a in axes}, [], []) for name in GROUPS}
    for record in results.complete:
        group = groups[_group_of(record, results.pareto_trials)]
        group.trials.append(record.number)
        for axis in axes:
            group.values[axis.metric].append(axis.shown(record.metric(axis.metric)))
        group.k.append(int(record.k or 0))
        group.hover.append(hover_text(record, entries.get(record.number)))
    return FrontInfo(list(groups.values()), axes, limits_of(results), note)


def staircase(points: list[tuple[float, float, int]], over: str, x_up: bool = False, y_up: bool = True) -> Staircase:
    """Non-dominated (x, y, trial) points; by default lower x and higher y are better."""
    sx, sy = (-1.0 if x_up else 1.0), (1.0 if y_up else -1.0)
    out = Staircase([], [], [], over)
    best = float("-inf")
    for x, y, trial in sorted(points, key=lambda p: (sx * p[0], -sy * p[1], p[2])):
        if sy * y > best:
            best = sy * y
            out.cost.append(x)
            out.accuracy.append(y)
            out.trials.append(trial)
    return out


def projection_info(results: StudyResults) -> ProjectionInfo:
    """The front plus the 2-D staircases, over the feasible trials (all of them if none is)."""
    front = front_info(results)
    done = results.complete
    pool = [r for r in done if r.feasible] or done
    over = "feasible" if any(r.feasible for r in done) else "all, none is feasible"
    splits = [r for r in pool if r.k is not None and r.place == ACTIVATION]
    x, y, vertical = front.axes
    only = f"{over}, activation splits only"
    return ProjectionInfo(
        front,
        _plane(pool, x, vertical, over),
        _plane(pool, y, vertical, over),
        _plane(splits, x, vertical, only),
        _plane(splits, y, vertical, only),
    )


def _plane(records: list[TrialRecord], x: Axis, y: Axis, over: str) -> Staircase:
    points = []
    for r in records:
        px, py = x.shown(r.metric(x.metric)), y.shown(r.metric(y.metric))
        if px is not None and py is not None:
            points.append((px, py, r.number))
    return staircase(points, over, x.up, y.up)
