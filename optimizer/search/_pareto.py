"""The Pareto set of a study, re-scored once on the test split, and the ``best`` entry.

Front: the non-dominated completed trials (accuracy up; payload and device latency down), among the
feasible ones when any exist, one trial per distinct configuration. Each entry is re-scored on
the test split (nothing was fitted or tuned on it) with 95 % Wilson intervals. ``best``: the
highest test accuracy among entries within the payload budget and the device memory (ties: lower
device latency); ``None`` when no entry meets them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optuna

from optimizer.search._engine import Config, Evaluation

__all__ = ["config_key", "entry_of", "non_dominated", "pareto_entries", "pick_best", "wilson"]


def wilson(correct: int, n: int, z: float = 1.96) -> list[float]:
    """95 % Wilson score interval for a proportion."""
    if n == 0:
        return [0.0, 1.0]
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return [max(0.0, centre - half), min(1.0, centre + half)]


def _dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Objectives as (accuracy, payload, latency): higher, lower, lower."""
    no_worse = a[0] >= b[0] and a[1] <= b[1] and a[2] <= b[2]
    return no_worse and (a[0] > b[0] or a[1] < b[1] or a[2] < b[2])


def config_key(trial: optuna.trial.FrozenTrial) -> Config:
    p = trial.params
    return Config.make(p["alpha"], p["input_size"], p["k"], trial.user_attrs["codec_params"])


def non_dominated(trials: Sequence[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """The front over completed trials (feasible ones first), one trial per configuration."""
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE and t.values is not None]
    feasible = [t for t in done if t.user_attrs.get("feasible")]
    pool, seen = [], set()
    for t in sorted(feasible or done, key=lambda t: t.number):
        key = config_key(t)
        if key not in seen:
            seen.add(key)
            pool.append(t)
    return [t for t in pool if not any(_dominates(o.values, t.values) for o in pool if o is not t)]


def entry_of(trial: optuna.trial.FrozenTrial, test: Evaluation) -> dict[str, Any]:
    a = trial.user_attrs
    params = {
        "alpha": trial.params["alpha"],
        "input_size": trial.params["input_size"],
        "k": trial.params["k"],
        "codec": a["codec_params"]["kind"],
        **{k: v for k, v in a["codec_params"].items() if k != "kind"},
    }
    n_val = int(a["val_samples"])
    return {
        "trial": trial.number,
        "params": params,
        "val_accuracy": trial.values[0],
        "val_accuracy_ci": wilson(round(trial.values[0] * n_val), n_val),
        "test_accuracy": test.accuracy,
        "test_accuracy_ci": wilson(int(test.correct.sum()), len(test.correct)),
        "payload_bytes_mean": trial.values[1],
        "payload_bytes_p95": a["payload_bytes_p95"],
        "test_payload_bytes_mean": float(np.mean(test.payload_bytes)),
        "device_latency_ms": trial.values[2],
        "device_macs": a["device_macs"],
        "energy_mj": a["energy_mj"],
        "feasible": bool(a["feasible"]),
        "within_budget": bool(a["within_budget"]),
        "fits_memory": bool(a["fits_memory"]),
    }


def pick_best(entries: Sequence[dict[str, Any]], budget_bytes: float) -> dict[str, Any] | None:
    ok = [e for e in entries if e["payload_bytes_mean"] <= budget_bytes and e["fits_memory"]]
    return max(ok, key=lambda e: (e["test_accuracy"], -e["device_latency_ms"])) if ok else None


def pareto_entries(
    trials: Sequence[optuna.trial.FrozenTrial],
    score_test: Callable[[Config], Evaluation],
    progress: Callable[[], object] | None = None,
) -> list[dict[str, Any]]:
    entries = []
    for trial in non_dominated(trials):
        entries.append(entry_of(trial, score_test(config_key(trial))))
        if progress:
            progress()
    return sorted(entries, key=lambda e: (e["payload_bytes_mean"], -e["val_accuracy"]))
