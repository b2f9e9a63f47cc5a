"""Which metric goes on which axis, in which unit, and the study's limits to draw on them.

The figures read metrics by name (optimizer.system.METRICS). The front and its projections plot
three metrics: the study's objectives when it has three; the first three of four (the fourth is in
the table and the parallel coordinates); two objectives plus the first default metric they lack.
Accuracy, when plotted, is the vertical axis; the others are the horizontal ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from optimizer.report._records import StudyResults
from optimizer.system import DEFAULT_OBJECTIVES, METRICS

__all__ = ["AXES", "Axis", "Limit", "axis_of", "limits_of", "plot_axes"]


class Axis(NamedTuple):
    metric: str  # a name of optimizer.system.METRICS
    label: str  # the axis title, with the unit shown
    scale: float  # shown value = metric value x scale
    log: bool
    up: bool  # larger is better (the metric's direction)

    def shown(self, value: float | None) -> float | None:
        return None if value is None else value * self.scale


# metric -> (label, scale, log axis)
AXES: dict[str, tuple[str, float, bool]] = {
    "accuracy": ("val accuracy", 1.0, False),
    "payload_bytes": ("mean payload KB", 1e-3, True),
    "wire_bytes": ("bytes on the link KB", 1e-3, True),
    "device_ms": ("device ms (head + codec)", 1.0, False),
    "transfer_ms": ("transfer ms (RTT + link)", 1.0, False),
    "server_ms": ("server ms", 1.0, False),
    "e2e_ms": ("end-to-end ms", 1.0, False),
    "energy_mj": ("device energy mJ", 1.0, False),
    "device_macs": ("device M MACs", 1e-6, False),
}


class Limit(NamedTuple):
    value: float  # in the axis' shown unit
    label: str  # "budget 5 KB", "deadline 200 ms"


def axis_of(metric: str) -> Axis:
    label, scale, log = AXES[metric]
    return Axis(metric, label, scale, log, METRICS[metric].direction == "maximize")


def plot_axes(objectives: Sequence[str]) -> tuple[tuple[Axis, Axis, Axis], str]:
    """(x, y, vertical) axes for the study's objectives, and a note when they are not exactly three."""
    names = list(objectives[:3])
    note = ""
    if len(objectives) > 3:
        note = (
            f"The study has {len(objectives)} objectives; this figure shows the first three "
            f"({', '.join(names)}); {', '.join(objectives[3:])} is in the table and the parallel coordinates."
        )
    elif len(names) < 3:
        extra = [m for m in DEFAULT_OBJECTIVES if m not in names][: 3 - len(names)]
        note = f"The study has {len(names)} objectives ({', '.join(names)}); {', '.join(extra)} is shown for context."
        names += extra
    vertical = "accuracy" if "accuracy" in names else names[0]
    x, y = (n for n in names if n != vertical)
    return (axis_of(x), axis_of(y), axis_of(vertical)), note


def limits_of(results: StudyResults) -> dict[str, Limit]:
    """metric -> the bound the study put on it, in the axis' unit (only what can be drawn as a line)."""
    s, c = results.summary, results.constraints
    out: dict[str, Limit] = {}
    if results.budget_bytes is not None:
        out["payload_bytes"] = Limit(
            results.budget_bytes * AXES["payload_bytes"][1], f"budget {results.budget_bytes / 1000:g} KB"
        )
    if c:  # whole-path constraints (issue 13)
        if c.get("deadline_ms") is not None:
            out["e2e_ms"] = Limit(float(c["deadline_ms"]), f"deadline {c['deadline_ms']:g} ms")
        if c.get("fps"):
            out["device_ms"] = Limit(1000.0 / float(c["fps"]), f"frame {1000.0 / float(c['fps']):g} ms")
        if c.get("max_energy_mj") is not None:
            out["energy_mj"] = Limit(float(c["max_energy_mj"]), f"energy cap {c['max_energy_mj']:g} mJ")
        minimum = c.get("min_accuracy")
    else:  # older studies bounded the device latency only
        if s.get("max_latency_ms") is not None:
            out["device_ms"] = Limit(float(s["max_latency_ms"]), f"deadline {s['max_latency_ms']:g} ms")
        minimum = s.get("min_accuracy")
    if minimum is not None:
        out["accuracy"] = Limit(float(minimum), f"minimum accuracy {minimum:g}")
    return out
