"""What the report reads from a study, as plain records the figure functions can take apart.

Optuna's FrozenTrial carries its numbers in ``user_attrs["metrics"]`` (by name) and the system
model's terms in ``user_attrs["costs"]`` (see optimizer/search/_objective.py); studies written
before named metrics kept three positional values, which ``optimizer.search.trial_metrics`` names.
:class:`TrialRecord` keeps both dicts, so every figure reads ``record.metric("e2e_ms")``, never
``trial.values[i]``. :class:`StudyResults` is everything a report is built from: the trials,
pareto.json, the study's objectives, the device profile and the search space.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from optimizer.codecs import ACTIVATION, CODECS, INPUT, OUTPUT, codec_of_trial
from optimizer.config import DeviceProfile
from optimizer.search import modern_trial, trial_metrics, wilson
from optimizer.system import DEFAULT_OBJECTIVES

__all__ = ["StudyResults", "TrialRecord", "describe", "model_label", "record_of"]

# Studies written before the whole-path constraints recorded these four, in this order.
_LEGACY_CONSTRAINTS = ("payload_over_budget", "memory_overflow", "latency_over_deadline", "accuracy_below_minimum")

_CODEC_SHORT = {
    "components": "c",
    "bits": "b",
    "geometry": "",
    "coder": "",
    "format": "",
    "quality": "q",
    "beta": "beta",
}


@dataclass(frozen=True)
class TrialRecord:
    """One trial. ``metrics`` is empty unless the trial completed; ``costs`` is None for trials
    from before the system model (no per-term breakdown was stored)."""

    number: int
    state: str  # Optuna's TrialState name: COMPLETE, FAIL, RUNNING, ...
    model: str | None  # the model spec
    input_size: int | None
    k: int | None
    codec: dict[str, Any]  # the codec parameters with their "kind" (see search.suggest_config)
    metrics: dict[str, float] = field(default_factory=dict)  # metric name -> value (optimizer.system.METRICS)
    costs: dict[str, float] | None = None  # PathCosts.parts(): the terms of e2e_ms and energy_mj
    payload_bytes_p95: float | None = None
    feasible: bool = False
    within_budget: bool = False
    fits_memory: bool = False
    reference: bool = False  # one of the always-evaluated reference points
    val_samples: int = 0
    violated: tuple[str, ...] = ()  # names of the constraints this trial breaks (search._constraints)
    split: str | None = None  # the split point's name (``features_3``, ``layer2_1_relu_1``)

    def metric(self, name: str) -> float | None:
        return self.metrics.get(name)

    @property
    def accuracy(self) -> float | None:
        """Val accuracy."""
        return self.metrics.get("accuracy")

    @property
    def payload_bytes(self) -> float | None:
        """Mean len(payload) over val."""
        return self.metrics.get("payload_bytes")

    @property
    def device_ms(self) -> float | None:
        return self.metrics.get("device_ms")

    @property
    def device_macs(self) -> float | None:
        return self.metrics.get("device_macs")

    @property
    def complete(self) -> bool:
        return self.state == "COMPLETE" and self.accuracy is not None

    @property
    def kind(self) -> str:
        return str(self.codec.get("kind", "?"))

    @property
    def place(self) -> str | None:
        """Where its codec codes (optimizer.codecs: INPUT, ACTIVATION, OUTPUT); None if unknown."""
        return CODECS[self.kind].place if self.kind in CODECS else None

    @property
    def uncompressed(self) -> bool:
        """Its codec sends the activation as it is (the reference of compression)."""
        return self.kind in CODECS and CODECS[self.kind].uncompressed

    @property
    def learned(self) -> bool:
        """Its codec was trained with the model (a learned bottleneck)."""
        return self.kind in CODECS and CODECS[self.kind].learned

    @property
    def accuracy_ci(self) -> list[float] | None:
        """95 % Wilson interval of the val accuracy (None when the sample count is unknown)."""
        if self.accuracy is None or self.val_samples <= 0:
            return None
        return wilson(round(self.accuracy * self.val_samples), self.val_samples)


@dataclass(frozen=True)
class StudyResults:
    """Everything a report is built from; ``summary`` is pareto.json ({} when it is missing)."""

    report_dir: Path
    study_name: str
    trials: tuple[TrialRecord, ...]
    summary: dict[str, Any]
    pareto_trials: frozenset[int]  # trial numbers of the Pareto set
    space: dict[str, list[Any]]  # parameter -> the values the search could choose
    models: dict[str, dict[str, tuple[int, ...]]] = field(default_factory=dict)  # spec -> input_size, k offered
    device: DeviceProfile | None = None
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES  # the study's objectives, by metric name
    num_classes: int = 10
    notes: tuple[str, ...] = field(default=())  # what could not be read, said on the page
    first_start: str | None = None  # ISO times of the first trial start and the last trial end
    last_end: str | None = None

    @property
    def complete(self) -> list[TrialRecord]:
        return [t for t in self.trials if t.complete]

    @property
    def budget_bytes(self) -> float | None:
        value = self.summary.get("budget_bytes")
        return float(value) if value is not None else None

    @property
    def constraints(self) -> dict[str, Any]:
        """pareto.json's limits (``deadline_ms``, ``fps``, ``active`` rules...); {} for older studies."""
        value = self.summary.get("constraints")
        return value if isinstance(value, dict) else {}

    @property
    def deadline_ms(self) -> float | None:
        """The bound on e2e_ms (None when the study had none, or predates the system model)."""
        value = self.constraints.get("deadline_ms")
        return float(value) if value is not None else None


def record_of(trial: optuna.trial.FrozenTrial) -> TrialRecord:
    """The record of one Optuna trial (any state; a study from before model specs reads as today's)."""
    trial = modern_trial(trial)
    p, a = trial.params, trial.user_attrs
    codec = dict(a.get("codec_params") or _codec_from_params(p))
    done = trial.state == optuna.trial.TrialState.COMPLETE and trial.values is not None
    metrics = trial_metrics(trial) if done else {}
    if done and "device_macs" not in metrics and a.get("device_macs") is not None:
        metrics["device_macs"] = float(a["device_macs"])
    costs = a.get("costs")
    return TrialRecord(
        number=trial.number,
        state=trial.state.name,
        model=p.get("model"),
        input_size=p.get("input_size"),
        k=p.get("k"),
        codec=codec,
        metrics=metrics,
        costs={key: float(v) for key, v in costs.items()} if isinstance(costs, dict) else None,
        payload_bytes_p95=a.get("payload_bytes_p95"),
        feasible=bool(a.get("feasible", False)),
        within_budget=bool(a.get("within_budget", False)),
        fits_memory=bool(a.get("fits_memory", False)),
        reference=bool(a.get("reference", False)),
        val_samples=int(a.get("val_samples", 0)),
        violated=_violated(a),
        split=a.get("split"),
    )


def _violated(attrs: dict[str, Any]) -> tuple[str, ...]:
    """The constraints a trial breaks, by name (studies before named constraints: the legacy four)."""
    values = attrs.get("constraints") or []
    names = attrs.get("constraint_names") or _LEGACY_CONSTRAINTS
    return tuple(name for name, value in zip(names, values, strict=False) if float(value) > 0)


def _codec_from_params(p: dict[str, Any]) -> dict[str, Any]:
    """A trial that never got its user attributes (it failed): the codec from its parameters."""
    if p.get("k") == 0:
        return codec_of_trial(p, INPUT)
    codec = codec_of_trial(p, ACTIVATION)
    return codec if codec["kind"] != "?" else codec_of_trial(p, OUTPUT)


def model_label(model: str | None, input_size: int | None) -> str:
    return f"{model}, {input_size}px" if model is not None else "unknown model"


def describe(record: TrialRecord) -> str:
    """A one-line configuration: ``mobilenetv2:alpha=1.0 size=96 k=12 (features_6) pca channel c=8 b=4 ans``."""
    codec = record.codec
    where = f"k={record.k} ({record.split})" if record.split else f"k={record.k}"
    parts = [str(record.model or "?"), f"size={record.input_size}", where, record.kind]
    for key, short in _CODEC_SHORT.items():
        if key in codec and codec[key] is not None and not (key == "quality" and codec.get("format") == "png"):
            parts.append(f"{short}={codec[key]}" if short else str(codec[key]))
    if codec.get("geometry") == "tile":
        parts.append(f"tile={codec.get('tile')}")
    return " ".join(parts)
