"""The models of a search space, resolved through the model registry: canonical specs, the split
points each may use, and the mapping of studies written before model specs.

A space lists model specs as written and the cuts to use (``all``, ``blocks`` or names); here each
spec is parsed to its canonical form and its model traced once (torch.fx, untrained weights: the
split points do not depend on them) to turn the cuts into split indices k.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Any

import optuna
import torch

from optimizer.codecs import ACTIVATION, CODECS, Site, variant_param
from optimizer.config import ModelChoice, SearchSpace
from optimizer.errors import UserError
from optimizer.models import adapter_for, build_model, count_macs, legacy_model_spec, parse_model_spec, split_graph

__all__ = [
    "SpaceModel",
    "canonical_params",
    "legacy_block_ks",
    "legacy_params",
    "model_macs",
    "modern_trial",
    "resolve_model",
    "resolve_models",
    "site_param",
]


@dataclass(frozen=True)
class SpaceModel:
    """One model of a space, ready for the search.

    Attributes:
        spec: the canonical model spec (the model's identity in trials, caches and bundles).
        weights: the weight spec, or None for the zoo's model of ``spec`` for the dataset.
        input_sizes: the square input sizes to try.
        ks: the split indices the search may choose, ascending.
        names: the name of every split point of the model, by k (not only those in ``ks``).
        blocks: the model's block boundaries (SplitGraph.block_ks), which numbered splits before model specs.
    """

    spec: str
    weights: str | None
    input_sizes: tuple[int, ...]
    ks: tuple[int, ...]
    names: tuple[str, ...]
    blocks: tuple[int, ...]

    @property
    def last_k(self) -> int:
        """The all-local split: the head is the whole model and only the class id is sent."""
        return len(self.names) - 1

    @property
    def middle_k(self) -> int | None:
        """The middle of the activation splits the space offers (None where it offers none)."""
        inner = [k for k in self.ks if 0 < k < self.last_k]
        return inner[len(inner) // 2] if inner else None


def resolve_model(choice: ModelChoice) -> SpaceModel:
    """One model of a space: its canonical spec, weights, sizes and the ks its cuts name."""
    spec = parse_model_spec(choice.spec)
    adapter = adapter_for(spec)
    for size in choice.input_sizes:
        adapter.check_input_size(size)
    graph = split_graph(spec)
    ks = graph.ks_of(choice.cuts)
    if choice.cut_range is not None:
        lo, hi = choice.cut_range
        ks = ks[lo : hi + 1]
    if not ks:
        raise UserError(f"the search space leaves {spec} no split point; widen its cuts")
    weights = None if choice.weights == "zoo" else choice.weights
    return SpaceModel(str(spec), weights, choice.input_sizes, tuple(ks), tuple(graph.names()), tuple(graph.block_ks()))


def resolve_models(space: SearchSpace) -> dict[str, SpaceModel]:
    """Canonical spec -> its resolved model, in the space's order."""
    out: dict[str, SpaceModel] = {}
    for choice in space.models:
        model = resolve_model(choice)
        if model.spec in out:
            raise UserError(f"search space {space.name} lists {model.spec} twice (as {choice.spec!r}); list it once")
        out[model.spec] = model
    return out


def legacy_params(params: dict[str, Any]) -> dict[str, Any]:
    """A trial's parameters in today's form. Studies written before model specs named the model by
    ``alpha`` and the split by its block index; both map to the model spec and its split point."""
    if "model" in params or "alpha" not in params:
        return params
    spec = legacy_model_spec(float(params["alpha"]))
    k = legacy_block_ks(spec)[int(params["k"])]
    site = Site(spec, int(params["input_size"]), k, "", ACTIVATION)
    out = {key: value for key, value in params.items() if key != "alpha"}
    out["model"], out["k"] = spec, k
    for key, value in params.items():  # {kind}_{alpha}_{size}_k{block}: the trained instance chosen there
        kind = next((c.kind for c in CODECS.values() if c.options.placed and key.startswith(f"{c.kind}_")), None)
        if kind is not None:
            del out[key]
            out[variant_param(kind, site)] = value
    return out


def site_param(name: str, spec: str, models: int) -> str:
    """The trial parameter for ``input_size`` or ``k`` of model ``spec`` in a space of ``models`` models.
    # NOTE: Optuna refuses a categorical parameter whose choices change between trials, and models
    # of different families have different split points (and may have different sizes): in a space
    # of several models each one gets its own ``input_size_{spec}`` and ``k_{spec}``."""
    return name if models == 1 else f"{name}_{spec}"


def canonical_params(params: dict[str, Any]) -> dict[str, Any]:
    """A trial's parameters with ``model``, ``input_size`` and ``k`` under their plain names: a
    study before model specs mapped (:func:`legacy_params`), per-model names (:func:`site_param`)
    folded."""
    out = legacy_params(params)
    spec = out.get("model")
    for name in ("input_size", "k"):
        key = f"{name}_{spec}"
        if key in out:
            out = {k: v for k, v in out.items() if k != key} | {name: out[key]}
    return out


def modern_trial(trial: optuna.trial.FrozenTrial) -> optuna.trial.FrozenTrial:
    """A trial as if written by a single-model study of today: parameters of a study before model
    specs mapped (its split point's name recorded), per-model parameter names folded (see
    :func:`canonical_params`); others are returned as they are."""
    params = canonical_params(trial.params)
    if params == trial.params:
        return trial
    modern = copy.copy(trial)
    modern.params = params
    if "split" not in trial.user_attrs:
        modern.user_attrs = {**trial.user_attrs, "split": split_graph(params["model"]).names()[params["k"]]}
    return modern


@functools.lru_cache(maxsize=16)
def legacy_block_ks(spec: str) -> tuple[int, ...]:
    """The fx split index of each block boundary of ``spec``: the older numbering's k -> today's."""
    return tuple(split_graph(spec).block_ks())


@functools.lru_cache(maxsize=64)
def model_macs(spec: str, size: int) -> int:
    """Multiply-adds of the whole model at a square input size (fvcore, untrained weights)."""
    channels = adapter_for(spec).preprocessing(parse_model_spec(spec)).channels
    return count_macs(build_model(spec), torch.zeros(1, channels, size, size))
