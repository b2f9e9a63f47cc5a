"""The Pareto set of a study, re-scored once on the test split, and the ``best`` entry.

Front: the non-dominated completed trials over the study's named objectives (directions from
optimizer.system.METRICS), among the feasible ones when any exist, one trial per distinct
configuration. Each entry is re-scored on the test split with 95 % Wilson intervals; the test split
only reports. ``best`` (SELECTION_RULE) is chosen on val: the highest val accuracy among the trials
that meet every constraint, ties broken by the lower e2e_ms; it is re-scored on the test split too
when it is not on the front. With nothing feasible, ``best`` is None and :func:`infeasibility`
names the binding constraint and the nearest value reached.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optuna

from optimizer.search._engine import Config, Evaluation
from optimizer.search._models import canonical_params
from optimizer.system import DEFAULT_OBJECTIVES, dominates

__all__ = [
    "SELECTION_RULE",
    "config_key",
    "entry_of",
    "non_dominated",
    "pareto_entries",
    "pick_best",
    "trial_metrics",
    "wilson",
]

SELECTION_RULE = (
    "highest val accuracy among the trials that meet every constraint (ties: lower e2e_ms); "
    "chosen on the val split, the test split only reports"
)
# Studies written before named metrics returned (accuracy, payload, head + projection latency).
_LEGACY = {"accuracy": 0, "payload_bytes": 1, "device_ms": 2}


def wilson(correct: int, n: int, z: float = 1.96) -> list[float]:
    """95 % Wilson score interval for a proportion."""
    if n == 0:
        return [0.0, 1.0]
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return [max(0.0, centre - half), min(1.0, centre + half)]


def trial_metrics(trial: optuna.trial.FrozenTrial) -> dict[str, float]:
    """The trial's metrics by name (studies from before named metrics: the three they recorded)."""
    stored = trial.user_attrs.get("metrics")
    if isinstance(stored, dict):
        return {k: float(v) for k, v in stored.items()}
    values = list(trial.values or [])
    out = {name: float(values[i]) for name, i in _LEGACY.items() if i < len(values)}
    for key in ("device_macs", "energy_mj"):
        if key in trial.user_attrs:
            out[key] = float(trial.user_attrs[key])
    return out


def config_key(trial: optuna.trial.FrozenTrial) -> Config:
    """The configuration a trial scored (a study from before model specs: see search.modern_trial)."""
    p = canonical_params(trial.params)
    return Config.make(p["model"], p["input_size"], p["k"], trial.user_attrs["codec_params"])


def _unique_complete(trials: Sequence[optuna.trial.FrozenTrial], feasible_only: bool) -> list[optuna.trial.FrozenTrial]:
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE and t.values is not None]
    if feasible_only:
        done = [t for t in done if t.user_attrs.get("feasible")]
    pool, seen = [], set()
    for t in sorted(done, key=lambda t: t.number):
        key = config_key(t)
        if key not in seen:
            seen.add(key)
            pool.append(t)
    return pool


def non_dominated(
    trials: Sequence[optuna.trial.FrozenTrial], objectives: Sequence[str] = DEFAULT_OBJECTIVES
) -> list[optuna.trial.FrozenTrial]:
    """The front over completed trials (feasible ones first), one trial per configuration."""
    pool = _unique_complete(trials, feasible_only=True) or _unique_complete(trials, feasible_only=False)
    metrics = {t.number: trial_metrics(t) for t in pool}
    return [
        t
        for t in pool
        if not any(dominates(metrics[o.number], metrics[t.number], objectives) for o in pool if o is not t)
    ]


def entry_of(trial: optuna.trial.FrozenTrial, test: Evaluation) -> dict[str, Any]:
    a = trial.user_attrs
    metrics = trial_metrics(trial)
    place = canonical_params(trial.params)
    params = {
        "model": place["model"],
        "input_size": place["input_size"],
        "k": place["k"],
        "split": a.get("split"),
        "codec": a["codec_params"]["kind"],
        **{k: v for k, v in a["codec_params"].items() if k != "kind"},
    }
    n_val = int(a["val_samples"])
    return {
        "trial": trial.number,
        "params": params,
        "metrics": metrics,
        "costs": a.get("costs"),
        "val_accuracy": metrics["accuracy"],
        "val_accuracy_ci": wilson(round(metrics["accuracy"] * n_val), n_val),
        "test_accuracy": test.accuracy,
        "test_accuracy_ci": wilson(int(test.correct.sum()), len(test.correct)),
        "payload_bytes_mean": metrics["payload_bytes"],
        "payload_bytes_p95": a["payload_bytes_p95"],
        "test_payload_bytes_mean": float(np.mean(test.payload_bytes)),
        "device_latency_ms": metrics.get("device_ms"),  # the name before named metrics
        "device_macs": a["device_macs"],
        "energy_mj": a["energy_mj"],
        "feasible": bool(a["feasible"]),
        "within_budget": bool(a["within_budget"]),
        "fits_memory": bool(a["fits_memory"]),
    }


def pick_best(trials: Sequence[optuna.trial.FrozenTrial]) -> optuna.trial.FrozenTrial | None:
    """The trial SELECTION_RULE picks, or None when no trial meets every constraint."""
    feasible = _unique_complete(trials, feasible_only=True)
    if not feasible:
        return None

    def rank(t: optuna.trial.FrozenTrial) -> tuple[float, float, int]:
        m = trial_metrics(t)
        return (-m["accuracy"], m.get("e2e_ms", m.get("device_ms", 0.0)), t.number)

    return min(feasible, key=rank)


def pareto_entries(
    trials: Sequence[optuna.trial.FrozenTrial],
    score_test: Callable[[list[Config]], dict[Config, Evaluation]],
    objectives: Sequence[str] = DEFAULT_OBJECTIVES,
    extra: Sequence[optuna.trial.FrozenTrial] = (),
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The front's entries (by payload), each re-scored on the test split, and the entries of the
    ``extra`` trials (e.g. ``best`` off the front), re-scored in the same pass."""
    front = non_dominated(trials, objectives)
    scored = score_test([config_key(t) for t in [*front, *extra]])
    entries = [entry_of(trial, scored[config_key(trial)]) for trial in front]
    ordered = sorted(entries, key=lambda e: (e["payload_bytes_mean"], -e["val_accuracy"]))
    return ordered, [entry_of(t, scored[config_key(t)]) for t in extra]
