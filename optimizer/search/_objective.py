"""From an Optuna trial to a configuration, its named metrics, its objectives and constraints.

Every trial records every metric of optimizer.system by name (``user_attrs["metrics"]``) and the
terms of the system model (``user_attrs["costs"]``); it returns the study's objectives in the order
the study names them. Constraints (see _constraints) use Optuna's mechanism; infeasible trials stay
in the study.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import optuna

from optimizer.config import DeviceProfile, SearchSpace
from optimizer.models import FAMILY
from optimizer.profiler import profile_model
from optimizer.search._constraints import Limits
from optimizer.search._engine import Config, Evaluation, Evaluator
from optimizer.system import DEFAULT_OBJECTIVES, path_costs

__all__ = [
    "Limits",
    "Objective",
    "bottleneck_param",
    "config_of",
    "constraints_of",
    "enumerate_params",
    "suggest_config",
]

N_BLOCKS = 19  # MobileNetV2's features[0..18]


def suggest_config(trial: optuna.trial.BaseTrial, space: SearchSpace) -> Config:
    """Define-by-run: the codec parameters asked for depend on k."""
    alpha = trial.suggest_categorical("alpha", list(space.alphas))
    size = trial.suggest_categorical("input_size", list(space.input_sizes))
    k = trial.suggest_int("k", space.k_min, min(space.k_max, N_BLOCKS + 1))
    trained = space.bottlenecks_at(alpha, size, k)
    if trained:
        name = trial.suggest_categorical(bottleneck_param(alpha, size, k), ["none", *(b.name for b in trained)])
        if name != "none":
            return Config.make(alpha, size, k, next(b for b in trained if b.name == name).codec_params())
    return Config.make(alpha, size, k, _suggest_codec(trial, space, k))


def bottleneck_param(alpha: float, size: int, k: int) -> str:
    """The trial parameter that picks a trained bottleneck (or "none") where the space has some."""
    return f"bottleneck_{alpha:g}_{size}_k{k}"


def _suggest_codec(trial: optuna.trial.BaseTrial, space: SearchSpace, k: int) -> dict[str, Any]:
    if k == 0:
        fmt = trial.suggest_categorical("image_format", list(space.image.formats))
        quality = 100 if fmt == "png" else trial.suggest_categorical("image_quality", list(space.image.qualities))
        return {"kind": "image", "format": fmt, "quality": quality}
    if k == N_BLOCKS + 1:
        return {"kind": "class-id"}
    if trial.suggest_categorical("codec", ["pca", "float16"]) == "float16":
        return {"kind": "float16"}
    geometry = trial.suggest_categorical("geometry", list(space.pca.geometry))
    return {
        "kind": "pca",
        "geometry": geometry,
        "tile": space.pca.tile if geometry == "tile" else 1,
        "components": trial.suggest_categorical("components", list(space.pca.components)),
        "bits": trial.suggest_categorical("bits", list(space.pca.bits)),
        "coder": trial.suggest_categorical("coder", list(space.pca.coders)),
    }


def enumerate_params(space: SearchSpace) -> list[dict[str, Any]]:
    """Every trial parameter set of the space (the grid), in a fixed order."""
    out: list[dict[str, Any]] = []
    for alpha, size in itertools.product(space.alphas, space.input_sizes):
        for k in range(space.k_min, min(space.k_max, N_BLOCKS + 1) + 1):
            base: dict[str, Any] = {"alpha": alpha, "input_size": size, "k": k}
            trained = space.bottlenecks_at(alpha, size, k)
            if trained:
                key = bottleneck_param(alpha, size, k)
                out.extend({**base, key: b.name} for b in trained)
                base = {**base, key: "none"}
            out.extend({**base, **codec} for codec in _codec_grid(space, k))
    return out


def _codec_grid(space: SearchSpace, k: int) -> list[dict[str, Any]]:
    if k == 0:
        return [
            {"image_format": f} if f == "png" else {"image_format": f, "image_quality": q}
            for f in space.image.formats
            for q in (space.image.qualities if f != "png" else [None])
        ]
    if k == N_BLOCKS + 1:
        return [{}]
    pca = space.pca
    return [{"codec": "float16"}] + [
        {"codec": "pca", "geometry": g, "components": c, "bits": b, "coder": coder}
        for g, c, b, coder in itertools.product(pca.geometry, pca.components, pca.bits, pca.coders)
    ]


def config_of(params: dict[str, Any], space: SearchSpace) -> Config:
    """Rebuild a configuration from a finished trial's parameters."""
    return suggest_config(optuna.trial.FixedTrial(params), space)


def constraints_of(trial: optuna.trial.FrozenTrial) -> list[float]:
    return list(trial.user_attrs.get("constraints", [1.0]))


class Objective:
    """Callable for ``study.optimize``; records everything the report needs as user attributes."""

    def __init__(
        self,
        space: SearchSpace,
        evaluator: Evaluator,
        device: DeviceProfile,
        limits: Limits,
        objectives: tuple[str, ...] = DEFAULT_OBJECTIVES,
        transport: str = "http",
    ) -> None:
        self.space, self.evaluator, self.device, self.limits = space, evaluator, device, limits
        self.objectives, self.transport = objectives, transport

    def _clamped(self, config: Config) -> Config:
        """Components beyond the vector size mean 'all of them'."""
        params = config.codec_params
        if params.get("kind") != "pca":
            return config
        shape = self.evaluator.activations(config.alpha, config.input_size, config.k, "calib").shape[1:]
        size = shape[0] * (params["tile"] ** 2 if params["geometry"] == "tile" else 1)
        params["components"] = min(params["components"], size)
        return Config.make(config.alpha, config.input_size, config.k, params)

    def measure(self, config: Config, result: Evaluation) -> dict[str, Any]:
        """The trial's user attributes: named metrics, the system model's terms, constraints."""
        split = profile_model(self.device, config.alpha, config.input_size, self.evaluator.dataset.num_classes)
        row = split.splits[config.k]
        payload = float(result.payload_bytes.mean())
        costs = path_costs(
            self.device,
            row.latency_ms,
            row.cum_macs,
            row.tail_latency_ms,
            payload,
            result.device_work,
            result.server_work,
            self.transport,
        )
        metrics = {"accuracy": result.accuracy, "payload_bytes": payload, **costs.metrics()}
        violations = self.limits.violations(metrics, row.fits_memory, costs.uplink_ms)
        return {
            "codec_params": config.codec_params,
            "family": FAMILY,
            "metrics": metrics,
            "costs": costs.parts(),
            "constraint_names": list(violations),
            "constraints": list(violations.values()),
            "feasible": all(v <= 0 for v in violations.values()),
            "within_budget": violations["payload_over_budget"] <= 0,
            "fits_memory": row.fits_memory,
            "payload_bytes_p95": float(np.percentile(result.payload_bytes, 95)),
            "device_macs": int(metrics["device_macs"]),
            "head_latency_ms": row.latency_ms,
            "energy_mj": metrics["energy_mj"],
            "val_samples": len(result.correct),
        }

    def __call__(self, trial: optuna.trial.Trial) -> tuple[float, ...]:
        config = self._clamped(suggest_config(trial, self.space))
        attrs = self.measure(config, self.evaluator.evaluate(config, "val"))
        for name, bound in zip(attrs["constraint_names"], attrs["constraints"], strict=True):
            trial.set_constraint(name, bound)  # read by the samplers (Optuna >= 5)
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return tuple(attrs["metrics"][name] for name in self.objectives)
