"""What the report reads from a study, as plain records the figure functions can take apart.

Optuna's FrozenTrial carries its numbers in ``values`` and ``user_attrs`` (see
optimizer/search/_objective.py); :class:`TrialRecord` names them once, so every figure reads
``record.payload_bytes`` instead of ``trial.values[1]``. :class:`StudyResults` is everything a
report is built from: the trials, pareto.json, the device profile and the search space.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from optimizer.config import DeviceProfile
from optimizer.search import N_BLOCKS, wilson

__all__ = ["StudyResults", "TrialRecord", "describe", "model_label", "record_of"]

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
    """One trial. The objectives are None unless the trial completed."""

    number: int
    state: str  # Optuna's TrialState name: COMPLETE, FAIL, RUNNING, ...
    alpha: float | None
    input_size: int | None
    k: int | None
    codec: dict[str, Any]  # the codec parameters with their "kind" (see search.suggest_config)
    accuracy: float | None = None  # val accuracy
    payload_bytes: float | None = None  # mean len(payload) over val
    latency_ms: float | None = None  # predicted device latency: head + codec projection
    payload_bytes_p95: float | None = None
    device_macs: int | None = None
    feasible: bool = False
    within_budget: bool = False
    fits_memory: bool = False
    reference: bool = False  # one of the always-evaluated reference points
    val_samples: int = 0

    @property
    def complete(self) -> bool:
        return self.state == "COMPLETE" and self.accuracy is not None

    @property
    def kind(self) -> str:
        return str(self.codec.get("kind", "?"))

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
    device: DeviceProfile | None = None
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


def record_of(trial: optuna.trial.FrozenTrial) -> TrialRecord:
    """The record of one Optuna trial (any state)."""
    p, a = trial.params, trial.user_attrs
    codec = dict(a.get("codec_params") or _codec_from_params(p))
    done = trial.state == optuna.trial.TrialState.COMPLETE and trial.values is not None
    values = list(trial.values) if done else [None, None, None]
    return TrialRecord(
        number=trial.number,
        state=trial.state.name,
        alpha=p.get("alpha"),
        input_size=p.get("input_size"),
        k=p.get("k"),
        codec=codec,
        accuracy=values[0],
        payload_bytes=values[1],
        latency_ms=values[2],
        payload_bytes_p95=a.get("payload_bytes_p95"),
        device_macs=a.get("device_macs"),
        feasible=bool(a.get("feasible", False)),
        within_budget=bool(a.get("within_budget", False)),
        fits_memory=bool(a.get("fits_memory", False)),
        reference=bool(a.get("reference", False)),
        val_samples=int(a.get("val_samples", 0)),
    )


def _codec_from_params(p: dict[str, Any]) -> dict[str, Any]:
    """A trial that never got its user attributes (it failed): the codec from its parameters."""
    k = p.get("k")
    if k == 0:
        return {"kind": "image", "format": p.get("image_format"), "quality": p.get("image_quality")}
    if k == N_BLOCKS + 1:
        return {"kind": "class-id"}
    if p.get("codec") == "pca":
        keys = ("geometry", "components", "bits", "coder")
        return {"kind": "pca", **{key: p[key] for key in keys if key in p}}
    return {"kind": p.get("codec", "?")}


def model_label(alpha: float | None, input_size: int | None) -> str:
    return f"alpha {alpha:g}, {input_size}px" if alpha is not None else "unknown model"


def describe(record: TrialRecord) -> str:
    """A one-line configuration: ``alpha=1 size=96 k=7 pca channel c=8 b=4 ans``."""
    alpha = "?" if record.alpha is None else f"{record.alpha:g}"
    codec = record.codec
    parts = [f"alpha={alpha}", f"size={record.input_size}", f"k={record.k}", record.kind]
    for key, short in _CODEC_SHORT.items():
        if key in codec and codec[key] is not None and not (key == "quality" and codec.get("format") == "png"):
            parts.append(f"{short}={codec[key]}" if short else str(codec[key]))
    if codec.get("geometry") == "tile":
        parts.append(f"tile={codec.get('tile')}")
    return " ".join(parts)
