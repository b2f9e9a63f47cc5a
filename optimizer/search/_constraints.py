"""Constraints on the whole path, by metric name; Optuna's convention: a value <= 0 is satisfied.

Every study records all of them (an inactive one is 0), so the list has one length per study:
- ``payload_over_budget``: mean payload bytes - the budget;
- ``memory_overflow``: 1 when the head's weights or peak activation do not fit the device;
- ``e2e_over_deadline``: e2e_ms - the deadline (``--max-latency-ms``, or 1000 / ``--fps``, the tighter);
- ``device_over_frame`` and ``link_over_frame``: a pipelined stream at F fps must start a frame every
  1/F s, so the device's work and the uplink's serialization of one frame must each fit in 1/F;
- ``energy_over_cap``: energy_mj - ``--max-energy-mj``;
- ``accuracy_below_minimum``: ``--min-accuracy`` - accuracy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import optuna

__all__ = ["CONSTRAINTS", "Limits", "infeasibility"]

# name -> (the metric it bounds, how a message describes the bound)
CONSTRAINTS: dict[str, tuple[str, str]] = {
    "payload_over_budget": ("payload_bytes", "mean payload <= {budget_bytes:g} B"),
    "memory_overflow": ("memory", "head within the device's memory"),
    "e2e_over_deadline": ("e2e_ms", "e2e_ms <= {deadline_ms:g} ms"),
    "device_over_frame": ("device_ms", "device_ms <= {frame_ms:g} ms per frame"),
    "link_over_frame": ("uplink_ms", "uplink serialization <= {frame_ms:g} ms per frame"),
    "energy_over_cap": ("energy_mj", "energy_mj <= {max_energy_mj:g} mJ"),
    "accuracy_below_minimum": ("accuracy", "accuracy >= {min_accuracy:g}"),
}

# Studies written before the whole-path constraints recorded these four, in this order.
_LEGACY_NAMES = ("payload_over_budget", "memory_overflow", "latency_over_deadline", "accuracy_below_minimum")


@dataclass(frozen=True)
class Limits:
    budget_bytes: float
    max_latency_ms: float | None = None
    fps: float | None = None
    max_energy_mj: float | None = None
    min_accuracy: float | None = None

    @property
    def frame_ms(self) -> float | None:
        return 1000.0 / self.fps if self.fps else None

    @property
    def deadline_ms(self) -> float | None:
        bounds = [b for b in (self.max_latency_ms, self.frame_ms) if b is not None]
        return min(bounds) if bounds else None

    def active(self) -> list[str]:
        """The constraints this study imposes."""
        on = {
            "payload_over_budget": True,
            "memory_overflow": True,
            "e2e_over_deadline": self.deadline_ms is not None,
            "device_over_frame": self.fps is not None,
            "link_over_frame": self.fps is not None,
            "energy_over_cap": self.max_energy_mj is not None,
            "accuracy_below_minimum": self.min_accuracy is not None,
        }
        return [name for name, yes in on.items() if yes]

    def violations(self, metrics: Mapping[str, float], fits_memory: bool, uplink_ms: float) -> dict[str, float]:
        """Every constraint's value for one trial (<= 0 satisfied; 0 where inactive)."""
        frame, deadline = self.frame_ms, self.deadline_ms
        values = {
            "payload_over_budget": metrics["payload_bytes"] - self.budget_bytes,
            "memory_overflow": 0.0 if fits_memory else 1.0,
            "e2e_over_deadline": metrics["e2e_ms"] - deadline if deadline is not None else 0.0,
            "device_over_frame": metrics["device_ms"] - frame if frame is not None else 0.0,
            "link_over_frame": uplink_ms - frame if frame is not None else 0.0,
            "energy_over_cap": metrics["energy_mj"] - self.max_energy_mj if self.max_energy_mj is not None else 0.0,
            "accuracy_below_minimum": self.min_accuracy - metrics["accuracy"] if self.min_accuracy is not None else 0.0,
        }
        return {name: float(values[name]) for name in CONSTRAINTS}

    def describe(self, name: str) -> str:
        """The rule of one constraint in words, with its bound."""
        return CONSTRAINTS[name][1].format(**asdict(self), deadline_ms=self.deadline_ms, frame_ms=self.frame_ms)

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "deadline_ms": self.deadline_ms,
            "active": {name: self.describe(name) for name in self.active()},
        }


def infeasibility(trials: Sequence[optuna.trial.FrozenTrial], limits: Limits) -> str:
    """Why no trial is feasible: each constraint no trial meets, with the nearest value reached."""
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE and "constraints" in t.user_attrs]
    if not done:
        return "no trial completed"
    binding = []
    for name in limits.active():
        scored = [(v, t) for t in done if (v := _violation(t, name)) is not None]
        if not scored or min(v for v, _ in scored) <= 0:
            continue
        nearest = min(scored, key=lambda vt: vt[0])[1]
        binding.append(
            f"{limits.describe(name)}: no trial meets it (nearest {_reached(nearest, name)}, trial {nearest.number})"
        )
    if not binding:
        return "each constraint is met by some trial, but no trial meets all of them; relax one (see pareto.json)"
    return "no configuration met every constraint; " + "; ".join(binding)


def _violation(trial: optuna.trial.FrozenTrial, name: str) -> float | None:
    names = trial.user_attrs.get("constraint_names") or list(_LEGACY_NAMES)
    values = trial.user_attrs["constraints"]
    return float(values[names.index(name)]) if name in names and names.index(name) < len(values) else None


def _reached(trial: optuna.trial.FrozenTrial, name: str) -> str:
    metric = CONSTRAINTS[name][0]
    if metric == "memory":
        return "the head does not fit"
    value = (trial.user_attrs.get("metrics") or {}).get(metric)
    if value is None:
        value = (trial.user_attrs.get("costs") or {}).get(metric)
    if value is None:
        return "unknown"
    unit = {"payload_bytes": " B", "energy_mj": " mJ", "accuracy": ""}.get(metric, " ms")
    return f"{value:.4g}{unit}"
