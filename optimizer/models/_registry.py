"""The registry of model adapters: one entry per family module, and the functions that use it.

Adding a family is one module in ``optimizer/models/families/`` with an ``ADAPTERS`` tuple and one
line in ``_FAMILY_MODULES`` below (or :func:`register_adapter` at run time).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from torch import nn

from optimizer.errors import UserError
from optimizer.models._adapter import ModelAdapter
from optimizer.models._fx_split import SplitGraph
from optimizer.models._load import BuiltModel
from optimizer.models._spec import ModelSpec, format_number
from optimizer.models._zoo import ZOO_DIR
from optimizer.models.families import _efficientnet, _mobilenetv2, _mobilenetv3, _python, _regnet, _resnet

__all__ = [
    "adapter_for",
    "build_model",
    "get_adapter",
    "list_adapters",
    "load_spec_model",
    "parse_model_spec",
    "register_adapter",
    "specs_from_family",
    "split_graph",
]

_FAMILY_MODULES = (_mobilenetv2, _resnet, _mobilenetv3, _efficientnet, _regnet, _python)
_ADAPTERS: dict[str, ModelAdapter] = {}


def register_adapter(adapter: ModelAdapter) -> ModelAdapter:
    """Add a family; its name must be new."""
    if not adapter.family or ":" in adapter.family:
        raise ValueError(f"an adapter's family must be a non-empty name without ':', got {adapter.family!r}")
    if adapter.family in _ADAPTERS:
        raise ValueError(f"model family {adapter.family!r} is already registered")
    _ADAPTERS[adapter.family] = adapter
    return adapter


for _module in _FAMILY_MODULES:
    for _adapter in _module.ADAPTERS:
        register_adapter(_adapter)


def list_adapters() -> list[ModelAdapter]:
    """Every registered family, in registration order."""
    return list(_ADAPTERS.values())


def get_adapter(family: str) -> ModelAdapter:
    if family not in _ADAPTERS:
        raise UserError(f"unknown model family {family!r}; the families are {', '.join(_ADAPTERS)}")
    return _ADAPTERS[family]


def parse_model_spec(text: str | ModelSpec) -> ModelSpec:
    """``FAMILY[:ARGS]`` -> its canonical spec (a spec passes through unchanged)."""
    if isinstance(text, ModelSpec):
        return text
    if not isinstance(text, str) or not text.strip():
        raise UserError(f"a model spec is FAMILY[:KEY=VALUE,...] or python:module:factory, got {text!r}")
    family, _, args = text.strip().partition(":")
    return get_adapter(family.strip()).parse(args)


def adapter_for(spec: ModelSpec | str) -> ModelAdapter:
    return get_adapter(parse_model_spec(spec).family)


def build_model(spec: ModelSpec | str, num_classes: int | None = None) -> nn.Module:
    """An untrained model of ``spec`` in eval mode."""
    spec = parse_model_spec(spec)
    return get_adapter(spec.family).build(spec, num_classes)


def load_spec_model(
    spec: ModelSpec | str, weights: str | None = None, dataset: str = "fashion-mnist", zoo_dir: Path = ZOO_DIR
) -> BuiltModel:
    """The model of ``spec`` with weights from a weight spec (``None``: the zoo's model for ``dataset``)."""
    spec = parse_model_spec(spec)
    return get_adapter(spec.family).load(spec, weights, dataset, zoo_dir)


def split_graph(spec: ModelSpec | str, model: nn.Module | None = None) -> SplitGraph:
    """The split points and head/tail halves of ``model`` (default: an untrained model of ``spec``)."""
    spec = parse_model_spec(spec)
    adapter = get_adapter(spec.family)
    return adapter.split_graph(spec, adapter.build(spec) if model is None else model)


def specs_from_family(family: str, alphas: Iterable[float]) -> list[ModelSpec]:
    """A search space's older form, ``family`` + ``alphas``, as model specs (one per alpha)."""
    adapter = get_adapter(family)
    if "alpha" not in [p.name for p in adapter.params]:
        raise UserError(f"family {family} has no alpha; list model specs instead of alphas")
    return [adapter.parse(f"alpha={format_number(float(a))}") for a in alphas]
