"""Synthetic studies for the report's tests and benchmark: trials with the parameters, values and
user attributes a real search records (optimizer/search/_objective.py: named ``metrics``, the
system model's ``costs``, named ``constraints``), made in seconds, without a model or a dataset.
The numbers are plausible, not measured. ``legacy=True`` makes trials as a search wrote them
before named metrics (three positional values, no costs), and ``by_alpha=True`` as it wrote them
before model specs (``alpha`` and a block index ``k``), to check that old studies still render.

Trials are made at MobileNetV2's 21 block boundaries (``BLOCK_KS[b]`` is the fx split index of
block ``b``, the older numbering), as the default search space offers them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, IntDistribution

from optimizer.models import split_graph
from optimizer.report import StudyResults, results_from_trials
from optimizer.search import Limits, modern_trial, non_dominated, pick_best, trial_metrics, wilson
from optimizer.system import DEFAULT_OBJECTIVES, PathCosts, SweepCandidate, bandwidth_sweep

PI4 = "profiles/pi4.yaml"
ALPHAS = (0.35, 1.0)
MODELS = {0.35: "mobilenetv2:alpha=0.35", 1.0: "mobilenetv2:alpha=1.0"}
SIZES = (32, 64)
BLOCK_KS = (0, 1, 3, 6, 7, 10, 11, 12, 15, 16, 17, 18, 21, 22, 23, 26, 27, 28, 31, 32, 35)
VAL = 200
# A synthetic link (Wi-Fi-like numbers): what path_costs would read from a network profile.
UPLINK_KBPS, DOWNLINK_KBPS, RTT_MS, MSS, PACKET_BYTES, REQUEST_BYTES, ANSWER_BYTES = 2000, 10000, 20, 1448, 90, 272, 278
_RATE_FREE = ("payload_over_budget", "memory_overflow", "energy_over_cap", "accuracy_below_minimum")


def _codec(rng: np.random.Generator, b: int) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(trial params, their distributions, codec_params) at block boundary b."""
    if b == 0:
        fmt = str(rng.choice(["jpeg", "webp", "png"]))
        params: dict[str, Any] = {"image_format": fmt}
        dists: dict[str, Any] = {"image_format": CategoricalDistribution(["jpeg", "webp", "png"])}
        quality = 100
        if fmt != "png":
            quality = int(rng.choice([10, 50, 90]))
            params["image_quality"] = quality
            dists["image_quality"] = CategoricalDistribution([10, 50, 90])
        return params, dists, {"kind": "image", "format": fmt, "quality": quality}
    if b == 20:
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


def _values(alpha: float, size: int, b: int, codec: dict[str, Any], rng: np.random.Generator) -> tuple[float, ...]:
    """(accuracy, mean payload B, device ms) at block boundary b, with the shapes of the real trade-off."""
    base = 0.80 + 0.05 * alpha + 0.0005 * size
    spatial = max(1, size // 2 ** min(5, 1 + b // 4))
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
    latency = 0.0 if b == 0 else alpha * (size / 32) ** 2 * b * 0.6
    return accuracy, float(payload), float(latency)


def path_of(payload: float, head_ms: float, k: int, wire_bytes: float | None = None) -> PathCosts:
    """The system model's terms for one synthetic configuration on the synthetic link."""
    sent = payload + REQUEST_BYTES
    wire = sent + PACKET_BYTES * math.ceil(sent / MSS) if wire_bytes is None else wire_bytes
    coding = 0.3 if k == 0 else 0.25 * head_ms  # image encoding / projection and entropy coding
    macs = int(head_ms * 3e6)
    return PathCosts(
        head_ms=head_ms,
        coding_ms=coding,
        device_macs=macs,
        wire_bytes=wire,
        answer_bytes=ANSWER_BYTES,
        rtt_ms=RTT_MS,
        uplink_ms=wire * 8 / UPLINK_KBPS,
        downlink_ms=ANSWER_BYTES * 8 / DOWNLINK_KBPS,
        request_ms=1.0,
        decode_ms=0.0005 * payload,
        tail_ms=0.05 * (36 - k),
        compute_energy_mj=macs * 0.5e-6,
        radio_energy_mj=(wire * 800 + ANSWER_BYTES * 400) * 1e-6,
    )


def trial_of(
    params: dict[str, Any],
    dists: dict[str, Any],
    codec: dict[str, Any],
    values: tuple[float, float, float],
    limits: Limits,
    fits: bool = True,
    legacy: bool = False,
    path: PathCosts | None = None,
    extra: dict[str, Any] | None = None,
) -> optuna.trial.FrozenTrial:
    """One completed trial with the attributes a search records (``legacy``: as before named metrics)."""
    accuracy, payload, head_ms = values
    path = path or path_of(payload, head_ms, int(params["k"]))
    metrics = {"accuracy": accuracy, "payload_bytes": payload, **path.metrics()}
    violations = limits.violations(metrics, fits, path.uplink_ms)
    attrs: dict[str, Any] = {
        "codec_params": codec,
        "feasible": all(v <= 0 for v in violations.values()),
        "within_budget": payload <= limits.budget_bytes,
        "fits_memory": fits,
        "payload_bytes_p95": payload * 1.1,
        "device_macs": path.device_macs,
        "energy_mj": metrics["energy_mj"],
        "val_samples": VAL,
        **(extra or {}),
    }
    if legacy:
        attrs["feasible"] = payload <= limits.budget_bytes and fits
        attrs["energy_mj"] = head_ms * 0.2
        objective = list(values)
    else:
        attrs.update(metrics=metrics, costs=path.parts(), constraint_names=list(violations))
        attrs["constraints"] = list(violations.values())
        objective = [metrics[name] for name in DEFAULT_OBJECTIVES]
    return optuna.trial.create_trial(params=params, distributions=dists, values=objective, user_attrs=attrs)


def _place(alpha: float, size: int, b: int, by_alpha: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The trial parameters and distributions naming the model and the split (block boundary b)."""
    if by_alpha:  # as a search wrote them before model specs
        params = {"alpha": alpha, "input_size": size, "k": b}
        dists = {"alpha": CategoricalDistribution(list(ALPHAS)), "k": IntDistribution(0, 20)}
    else:
        params = {"model": MODELS[alpha], "input_size": size, "k": BLOCK_KS[b]}
        dists = {"model": CategoricalDistribution(list(MODELS.values())), "k": CategoricalDistribution(list(BLOCK_KS))}
    return params, {**dists, "input_size": CategoricalDistribution(list(SIZES))}


def synthetic_trials(
    n: int,
    seed: int = 0,
    budget_bytes: float = 5000.0,
    legacy: bool = False,
    deadline_ms: float | None = None,
    by_alpha: bool = False,
) -> list[optuna.trial.FrozenTrial]:
    """``n`` completed trials (numbered 0..n-1), the first ones the all-local references."""
    rng = np.random.default_rng(seed)
    limits = Limits(budget_bytes, max_latency_ms=deadline_ms)
    trials = []
    models = [(a, s) for a in ALPHAS for s in SIZES]
    for i in range(n):
        alpha, size = models[i] if i < len(models) else models[int(rng.integers(len(models)))]
        b = 20 if i < len(models) else int(rng.integers(0, 21))
        params, dists, codec = _codec(rng, b)
        values = _values(alpha, size, b, codec, rng)
        fits = not (alpha == 1.0 and size == 64 and 3 <= b <= 5)  # a few out of memory, for variety
        place, place_dists = _place(alpha, size, b, by_alpha)
        path = path_of(values[1], values[2], BLOCK_KS[b])
        extra = {"reference": i < len(models)}
        if not by_alpha:
            extra["split"] = _NAMES[BLOCK_KS[b]]
        trial = trial_of(
            {**place, **params}, {**place_dists, **dists}, codec, values, limits, fits, legacy, path, extra
        )
        trials.append(trial)
    return numbered(trials)


# The fx split point names of MobileNetV2 (``split-opt splits --alpha 1``), by k.
_NAMES = dict(enumerate(split_graph(MODELS[1.0]).names()))


def _entry(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """A pareto.json entry, with made-up test metrics (val accuracy minus half a point)."""
    m = trial_metrics(t)
    test = max(0.0, m["accuracy"] - 0.005)
    place = {key: t.params[key] for key in ("alpha", "model", "input_size", "k") if key in t.params}
    entry = {
        "trial": t.number,
        "params": place,
        "val_accuracy": m["accuracy"],
        "val_accuracy_ci": wilson(round(m["accuracy"] * VAL), VAL),
        "test_accuracy": test,
        "test_accuracy_ci": wilson(round(test * 1000), 1000),
        "payload_bytes_mean": m["payload_bytes"],
        "payload_bytes_p95": t.user_attrs["payload_bytes_p95"],
        "device_latency_ms": m["device_ms"],
        "device_macs": t.user_attrs["device_macs"],
        "feasible": t.user_attrs["feasible"],
        "fits_memory": t.user_attrs["fits_memory"],
    }
    if "metrics" in t.user_attrs:
        entry.update(metrics=m, costs=t.user_attrs["costs"])
    return entry


def sweep_of(trials: list[optuna.trial.FrozenTrial], limits: Limits) -> list[dict[str, Any]]:
    """pareto.json's bandwidth_sweep, as the search computes it (optimizer.system.bandwidth_sweep)."""
    candidates = []
    for t in trials:
        values = dict(zip(t.user_attrs["constraint_names"], t.user_attrs["constraints"], strict=True))
        static_ok = all(values[name] <= 0 for name in _RATE_FREE)
        candidates.append(SweepCandidate(t.number, trial_metrics(t)["accuracy"], t.user_attrs["costs"], static_ok))
    return bandwidth_sweep(candidates, limits.deadline_ms, limits.frame_ms)


def summary_of(
    trials: list[optuna.trial.FrozenTrial], budget_bytes: float = 5000.0, deadline_ms: float | None = None
) -> dict[str, Any]:
    """A pareto.json for the trials; the format of their time (legacy trials: the old format)."""
    trials = [modern_trial(t) for t in trials]
    legacy = bool(trials) and "metrics" not in trials[0].user_attrs
    limits = Limits(budget_bytes, max_latency_ms=deadline_ms)
    best = pick_best(trials)
    summary: dict[str, Any] = {
        "study": "synthetic",
        "device": "pi4",
        "device_path": PI4,
        "budget_bytes": budget_bytes,
        "max_latency_ms": deadline_ms,
        "min_accuracy": None,
        "search_space": "synthetic",
        "dataset": "synthetic",
        "split_sizes": {"calib": 100, "val": VAL, "test": 1000},
        "sampler": "random",
        "seed": 0,
        "n_trials": len(trials),
        "pareto": [_entry(t) for t in non_dominated(trials)],
        "best": _entry(best) if best is not None else None,
        "message": None,
        "versions": {"split-opt": "test"},
        "wall_time_s": 1.0,
    }
    if not legacy:
        summary.update(
            network="synthetic-link",
            objectives=list(DEFAULT_OBJECTIVES),
            constraints=limits.to_json(),
            selection_rule="highest val accuracy among the trials that meet every constraint (ties: lower e2e_ms)",
            bandwidth_sweep=sweep_of(trials, limits),
        )
    return summary


def synthetic_results(
    n: int,
    report_dir: Path,
    seed: int = 0,
    budget_bytes: float = 5000.0,
    with_summary: bool = True,
    legacy: bool = False,
    deadline_ms: float | None = None,
    by_alpha: bool = False,
) -> StudyResults:
    trials = synthetic_trials(n, seed, budget_bytes, legacy, deadline_ms, by_alpha)
    summary = summary_of(trials, budget_bytes, deadline_ms) if with_summary else {}
    return results_from_trials(report_dir, "synthetic", [modern_trial(t) for t in trials], summary)


def hand_trial(
    model: str,
    size: int,
    k: int,
    codec: dict[str, Any],
    accuracy: float,
    payload: float,
    latency: float = 1.0,
    feasible: bool = True,
    wire_bytes: float | None = None,
    deadline_ms: float | None = None,
) -> optuna.trial.FrozenTrial:
    """One completed trial with exactly these numbers (for hand-checked figure data): ``model`` is a
    model spec and ``k`` an fx split index (``BLOCK_KS[b]`` for block boundary b); ``latency`` is the
    head's ms; ``feasible=False`` puts it out of memory; a ``deadline_ms`` bounds its e2e_ms."""
    params = {"model": model, "input_size": size, "k": k}
    dists = {
        "model": CategoricalDistribution([model]),
        "input_size": CategoricalDistribution([size]),
        "k": CategoricalDistribution(list(BLOCK_KS)),
    }
    path = path_of(payload, latency, k, wire_bytes=wire_bytes)
    limits = Limits(1e12, max_latency_ms=deadline_ms)
    extra = {"within_budget": feasible, "split": _NAMES.get(k)}  # hand-made: infeasible reads "over budget"
    return trial_of(params, dists, codec, (accuracy, payload, latency), limits, feasible, path=path, extra=extra)


def numbered(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """The trials added to an in-memory study, so they get the numbers 0, 1, 2, ..."""
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    study.add_trials(trials)
    return study.get_trials(deepcopy=False)
