"""Synthetic studies for the report's tests and benchmark: trials with the parameters, values and
user attributes a real search records (optimizer/search/_objective.py), made in seconds, without
a model or a dataset. The numbers are plausible, not measured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, IntDistribution

from optimizer.report import StudyResults, results_from_trials
from optimizer.search import non_dominated, pick_best, wilson

PI4 = "profiles/pi4.yaml"
ALPHAS = (0.35, 1.0)
SIZES = (32, 64)
VAL = 200


def _codec(rng: np.random.Generator, k: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(trial params, their distributions, codec_params) for split k."""
    if k == 0:
        fmt = str(rng.choice(["jpeg", "webp", "png"]))
        params: dict[str, Any] = {"image_format": fmt}
        dists: dict[str, Any] = {"image_format": CategoricalDistribution(["jpeg", "webp", "png"])}
        quality = 100
        if fmt != "png":
            quality = int(rng.choice([10, 50, 90]))
            params["image_quality"] = quality
            dists["image_quality"] = CategoricalDistribution([10, 50, 90])
        return params, dists, {"kind": "image", "format": fmt, "quality": quality}
    if k == 20:
        return {}, {}, {"kind": "class-id"}
    if rng.random() < 0.2:
        return {"codec": "float16"}, {"codec": CategoricalDistribution(["pca", "float16"])}, {"kind": "float16"}
    pca = {"geometry": "channel", "components": int(rng.choice([2, 8, 32])), "bits": int(rng.choice([2, 4, 8]))}
    pca["coder"] = "ans"
    dists = {
        "codec": CategoricalDistribution(["pca", "float16"]),
        "geometry": CategoricalDistribution(["channel"]),
        "components": CategoricalDistribution([2, 8, 32]),
        "bits": CategoricalDistribution([2, 4, 8]),
        "coder": CategoricalDistribution(["ans"]),
    }
    return {"codec": "pca", **pca}, dists, {"kind": "pca", "tile": 1, **pca}


def _values(alpha: float, size: int, k: int, codec: dict[str, Any], rng: np.random.Generator) -> tuple[float, ...]:
    """(accuracy, mean payload B, device ms) with the shapes of the real trade-off."""
    base = 0.80 + 0.05 * alpha + 0.0005 * size
    spatial = max(1, size // 2 ** min(5, 1 + k // 4))
    if codec["kind"] == "image":
        payload, loss = 300 + 6 * codec["quality"], 0.002 * (100 - codec["quality"]) / 10
    elif codec["kind"] == "class-id":
        payload, loss = 13.0, 0.0
    elif codec["kind"] == "float16":
        payload, loss = 2.0 * spatial * spatial * 32 * alpha + 15, 0.0
    else:
        payload = spatial * spatial * codec["components"] * codec["bits"] / 8 / 2 + 15
        loss = 0.25 / codec["components"] + 0.06 / codec["bits"]
    accuracy = round(float(np.clip(base - loss + rng.normal(0, 0.004), 0.05, 0.99)) * VAL) / VAL
    latency = 0.0 if k == 0 else alpha * (size / 32) ** 2 * k * 0.6
    return accuracy, float(payload), float(latency)


def synthetic_trials(n: int, seed: int = 0, budget_bytes: float = 5000.0) -> list[optuna.trial.FrozenTrial]:
    """``n`` completed trials (numbered 0..n-1), the first ones the all-local references."""
    rng = np.random.default_rng(seed)
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    trials = []
    models = [(a, s) for a in ALPHAS for s in SIZES]
    for i in range(n):
        alpha, size = models[i] if i < len(models) else models[int(rng.integers(len(models)))]
        k = 20 if i < len(models) else int(rng.integers(0, 21))
        params, dists, codec = _codec(rng, k)
        values = _values(alpha, size, k, codec, rng)
        fits = not (alpha == 1.0 and size == 64 and 3 <= k <= 5)  # a few out of memory, for variety
        attrs = {
            "codec_params": codec,
            "feasible": values[1] <= budget_bytes and fits,
            "within_budget": values[1] <= budget_bytes,
            "fits_memory": fits,
            "payload_bytes_p95": values[1] * 1.1,
            "device_macs": int(values[2] * 3e6),
            "energy_mj": values[2] * 0.2,
            "val_samples": VAL,
            "reference": i < len(models),
        }
        trials.append(
            optuna.trial.create_trial(
                params={"alpha": alpha, "input_size": size, "k": k, **params},
                distributions={
                    "alpha": CategoricalDistribution(list(ALPHAS)),
                    "input_size": CategoricalDistribution(list(SIZES)),
                    "k": IntDistribution(0, 20),
                    **dists,
                },
                values=list(values),
                user_attrs=attrs,
            )
        )
    study.add_trials(trials)
    return study.get_trials(deepcopy=False)


def summary_of(trials: list[optuna.trial.FrozenTrial], budget_bytes: float = 5000.0) -> dict[str, Any]:
    """A pareto.json for the trials, with made-up test metrics (val accuracy minus half a point)."""
    entries = []
    for t in non_dominated(trials):
        test = max(0.0, t.values[0] - 0.005)
        entries.append(
            {
                "trial": t.number,
                "params": {"alpha": t.params["alpha"], "input_size": t.params["input_size"], "k": t.params["k"]},
                "val_accuracy": t.values[0],
                "val_accuracy_ci": wilson(round(t.values[0] * VAL), VAL),
                "test_accuracy": test,
                "test_accuracy_ci": wilson(round(test * 1000), 1000),
                "payload_bytes_mean": t.values[1],
                "payload_bytes_p95": t.user_attrs["payload_bytes_p95"],
                "device_latency_ms": t.values[2],
                "device_macs": t.user_attrs["device_macs"],
                "feasible": t.user_attrs["feasible"],
                "fits_memory": t.user_attrs["fits_memory"],
            }
        )
    return {
        "study": "synthetic",
        "device": "pi4",
        "device_path": PI4,
        "budget_bytes": budget_bytes,
        "max_latency_ms": None,
        "min_accuracy": None,
        "search_space": "synthetic",
        "dataset": "synthetic",
        "split_sizes": {"calib": 100, "val": VAL, "test": 1000},
        "sampler": "random",
        "seed": 0,
        "n_trials": len(trials),
        "pareto": entries,
        "best": pick_best(entries, budget_bytes),
        "message": None,
        "versions": {"split-opt": "test"},
        "wall_time_s": 1.0,
    }


def synthetic_results(
    n: int, report_dir: Path, seed: int = 0, budget_bytes: float = 5000.0, with_summary: bool = True
) -> StudyResults:
    trials = synthetic_trials(n, seed, budget_bytes)
    summary = summary_of(trials, budget_bytes) if with_summary else {}
    return results_from_trials(report_dir, "synthetic", trials, summary)


def hand_trial(
    alpha: float,
    size: int,
    k: int,
    codec: dict[str, Any],
    accuracy: float,
    payload: float,
    latency: float = 1.0,
    feasible: bool = True,
) -> optuna.trial.FrozenTrial:
    """One completed trial with exactly these numbers (for hand-checked figure data)."""
    return optuna.trial.create_trial(
        params={"alpha": alpha, "input_size": size, "k": k},
        distributions={
            "alpha": CategoricalDistribution([alpha]),
            "input_size": CategoricalDistribution([size]),
            "k": IntDistribution(0, 20),
        },
        values=[accuracy, payload, latency],
        user_attrs={
            "codec_params": codec,
            "feasible": feasible,
            "within_budget": feasible,
            "fits_memory": True,
            "payload_bytes_p95": payload,
            "device_macs": 1000,
            "val_samples": VAL,
        },
    )


def numbered(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """The trials added to an in-memory study, so they get the numbers 0, 1, 2, ..."""
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    study.add_trials(trials)
    return study.get_trials(deepcopy=False)
