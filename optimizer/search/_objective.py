"""From an Optuna trial to a configuration, its named metrics, its objectives and constraints.

Every trial records every metric of optimizer.system by name (``user_attrs["metrics"]``) and the
terms of the system model (``user_attrs["costs"]``); it returns the study's objectives in the order
the study names them. Constraints (see _constraints) use Optuna's mechanism; infeasible trials stay
in the study. A configuration the study has already scored is not scored again: the trial returns
the stored values (``user_attrs["repeat_of"]`` names the trial they come from).

Trial parameters: ``model`` (a canonical model spec), ``input_size``, ``k`` (categorical over the
split points the space offers that model; per model in a space of several, see search.site_param),
then the codecs' (optimizer.codecs.CodecChoices: ``codec`` where several are offered, each codec's
own such as ``image_format`` or ``geometry``, and ``bottleneck_{model}_{size}_k{k}`` where trained
bottlenecks exist).
# NOTE: ``input_size`` and ``k`` offer other choices for other models; Optuna's samplers treat a
# parameter whose choices differ between trials as independent of the others, which costs a little
# sample efficiency in spaces that mix families, and nothing in spaces of one family.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import optuna

from optimizer.codecs import ACTIVATION, CODECS, INPUT, OUTPUT, CodecChoices, Site, codec_class
from optimizer.config import DeviceProfile, SearchSpace
from optimizer.errors import UserError
from optimizer.profiler import profile_spec
from optimizer.search._constraints import Limits
from optimizer.search._engine import Config, Evaluation, Evaluator
from optimizer.search._models import SpaceModel, canonical_params, resolve_models, site_param
from optimizer.system import DEFAULT_OBJECTIVES, path_costs

__all__ = [
    "Limits",
    "Objective",
    "SearchChoices",
    "config_of",
    "constraints_of",
    "enumerate_params",
    "suggest_config",
]


class SearchChoices:
    """The space's models resolved (canonical specs, split indices) and the codecs it offers."""

    def __init__(self, space: SearchSpace, models: dict[str, SpaceModel]) -> None:
        self.space, self.models = space, models
        self.codecs = CodecChoices.of(space)
        self._check_places()

    def _check_places(self) -> None:
        """Every place the models' cuts reach needs a codec the space offers there."""
        offered = self.codecs.places()
        for spec, model in self.models.items():
            for k in model.ks:
                place = self.site(spec, model.input_sizes[0], k).place
                if place not in offered:
                    sections = [c.options.section for c in CODECS.values() if c.place == place and c.options.section]
                    raise UserError(
                        f"{self.space.path}: {spec} offers split {k} ({model.names[k]}, the {place}) but the space "
                        f"has no codec for the {place}; add a section for one ({', '.join(sections)}) or leave "
                        "that split out of the model's cuts"
                    )

    @classmethod
    def of(cls, space: SearchSpace) -> SearchChoices:
        """The choices of a space, its models resolved through the registry."""
        return cls(space, resolve_models(space))

    def site(self, spec: str, size: int, k: int) -> Site:
        """Split k of a model: the input (k = 0), the output (its last k), or an activation."""
        model = self.models[spec]
        place = INPUT if k == 0 else OUTPUT if k == model.last_k else ACTIVATION
        return Site(spec, size, k, model.names[k], place)

    def sites(self) -> list[Site]:
        """Every site the space offers, model by model."""
        return [
            self.site(spec, size, k)
            for spec, model in self.models.items()
            for size, k in itertools.product(model.input_sizes, model.ks)
        ]

    def param(self, name: str, spec: str) -> str:
        """The trial parameter holding ``input_size`` or ``k`` of ``spec`` (see search.site_param)."""
        return site_param(name, spec, len(self.models))

    def suggestion(self, params: dict[str, Any]) -> dict[str, Any]:
        """Parameters with plain ``input_size`` and ``k`` (pareto.json, reference points) under the
        names this space's trials suggest them by."""
        params = canonical_params(params)
        spec = str(params["model"])
        renamed = {name: self.param(name, spec) for name in ("input_size", "k")}
        return {renamed.get(key, key): value for key, value in params.items()}


def suggest_config(trial: optuna.trial.BaseTrial, choices: SearchChoices) -> Config:
    """Define-by-run: the split points offered depend on the model, the codecs on the split."""
    spec = trial.suggest_categorical("model", list(choices.models))
    model = choices.models[spec]
    size = trial.suggest_categorical(choices.param("input_size", spec), list(model.input_sizes))
    k = trial.suggest_categorical(choices.param("k", spec), list(model.ks))
    return Config.make(spec, size, k, choices.codecs.suggest(trial, choices.site(spec, size, k)))


def enumerate_params(choices: SearchChoices) -> list[dict[str, Any]]:
    """Every trial parameter set of the space (the grid), in a fixed order."""
    out: list[dict[str, Any]] = []
    for site in choices.sites():
        base = {"model": site.model, choices.param("input_size", site.model): site.input_size}
        base[choices.param("k", site.model)] = site.k
        out.extend({**base, **codec} for codec in choices.codecs.grid(site))
    return out


def config_of(params: dict[str, Any], choices: SearchChoices) -> Config:
    """Rebuild a configuration from a finished trial's parameters (studies before model specs too)."""
    return suggest_config(optuna.trial.FixedTrial(choices.suggestion(params)), choices)


def constraints_of(trial: optuna.trial.FrozenTrial) -> list[float]:
    return list(trial.user_attrs.get("constraints", [1.0]))


class Objective:
    """Callable for ``study.optimize``; records everything the report needs as user attributes."""

    def __init__(
        self,
        choices: SearchChoices,
        evaluator: Evaluator,
        device: DeviceProfile,
        limits: Limits,
        objectives: tuple[str, ...] = DEFAULT_OBJECTIVES,
        transport: str = "http",
    ) -> None:
        self.choices, self.evaluator, self.device, self.limits = choices, evaluator, device, limits
        self.objectives, self.transport = objectives, transport
        self._scored: dict[Config, optuna.trial.FrozenTrial] = {}
        self._seen: set[int] = set()  # trial numbers already indexed in _scored

    def _clamped(self, config: Config) -> Config:
        """The codec's canonical parameters at this split (e.g. more PCA components than values
        per vector mean all of them), so equal codecs are one configuration."""
        params = config.codec_params
        shape = tuple(self.evaluator.points(config.model, config.input_size)[config.k].shape)
        canonical = codec_class(params["kind"]).canonical_params(params, shape)
        return Config.make(config.model, config.input_size, config.k, canonical)

    def measure(self, config: Config, result: Evaluation) -> dict[str, Any]:
        """The trial's user attributes: named metrics, the system model's terms, constraints."""
        profile = profile_spec(self.device, config.model, config.input_size, self.evaluator.dataset.num_classes)
        row = profile.splits[config.k]
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
            "split": row.name,
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

    def _scored_before(self, trial: optuna.trial.Trial, config: Config) -> optuna.trial.FrozenTrial | None:
        """A completed trial of the study (this worker's or another's) with the same configuration."""
        if config not in self._scored:
            for done in trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
                if done.number in self._seen or "codec_params" not in done.user_attrs or "model" not in done.params:
                    continue
                self._seen.add(done.number)
                p = canonical_params(done.params)
                key = Config.make(p["model"], p["input_size"], p["k"], done.user_attrs["codec_params"])
                self._scored.setdefault(key, done)
        return self._scored.get(config)

    def __call__(self, trial: optuna.trial.Trial) -> tuple[float, ...]:
        config = self._clamped(suggest_config(trial, self.choices))
        before = self._scored_before(trial, config)
        if before is not None:
            attrs = {k: v for k, v in before.user_attrs.items() if k not in ("reference", "repeat_of")}
            attrs["repeat_of"] = int(before.user_attrs.get("repeat_of", before.number))
        else:
            attrs = self.measure(config, self.evaluator.evaluate(config, "val"))
        for name, bound in zip(attrs["constraint_names"], attrs["constraints"], strict=True):
            trial.set_constraint(name, bound)  # read by the samplers (Optuna >= 5)
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return tuple(attrs["metrics"][name] for name in self.objectives)
