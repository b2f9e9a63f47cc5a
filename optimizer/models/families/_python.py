"""A user's own network: ``python:package.module:factory``.

The factory is any callable in an importable module that returns an ``nn.Module`` (it gets
``num_classes=N`` when its signature has that parameter). The factory may declare, as attributes:

- ``preprocessing``: a dict (the keys of :class:`optimizer.data.Preprocessing`) or a Preprocessing:
  the normalisation, resize policy and channels the model was trained with;
- ``leaf_modules``: module classes torch.fx must not trace into (blocks with data-dependent Python).

Importing the module runs its code, as importing any package does; weights are still read with
``weights_only=True``.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable
from typing import Any

from torch import nn

from optimizer.data import Preprocessing
from optimizer.errors import UserError
from optimizer.models._adapter import ModelAdapter
from optimizer.models._spec import ModelSpec

__all__ = ["ADAPTERS", "PythonAdapter"]

_TARGET = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


class PythonAdapter(ModelAdapter):
    family = "python"
    description = "your own nn.Module from a factory: python:package.module:factory"

    def parse(self, args: str) -> ModelSpec:
        args = args.strip()
        if not _TARGET.match(args):
            raise UserError(
                f"model spec python:{args} must name a factory as python:package.module:factory "
                "(an importable module, a colon, a callable in it)"
            )
        return ModelSpec(self.family, args, (("factory", args),))

    def factory(self, spec: ModelSpec) -> Callable[..., Any]:
        module_name, _, attr = spec.get("factory").partition(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # any import failure is the user's module or path
            raise UserError(
                f"cannot import {module_name} for {spec} ({type(exc).__name__}: {exc}); "
                "put its package on PYTHONPATH or install it"
            ) from exc
        factory = getattr(module, attr, None)
        if not callable(factory):
            raise UserError(
                f"{module_name} has no callable {attr!r} for {spec}; name a function that returns the model"
            )
        return factory  # type: ignore[no-any-return]

    def build(self, spec: ModelSpec, num_classes: int | None = None) -> nn.Module:
        factory = self.factory(spec)
        takes_classes = "num_classes" in inspect.signature(factory).parameters
        model = factory(num_classes=num_classes) if takes_classes and num_classes is not None else factory()
        if not isinstance(model, nn.Module):
            raise UserError(f"{spec} returned a {type(model).__name__}, not a torch.nn.Module; return the model")
        return model.eval()

    def leaf_modules(self, spec: ModelSpec) -> tuple[type[nn.Module], ...]:
        leaves = tuple(getattr(self.factory(spec), "leaf_modules", ()))
        if not all(isinstance(c, type) and issubclass(c, nn.Module) for c in leaves):
            raise UserError(f"{spec}: factory.leaf_modules must be nn.Module classes, got {leaves!r}")
        return leaves

    def preprocessing(self, spec: ModelSpec, weights: str | None = None) -> Preprocessing:
        declared = getattr(self.factory(spec), "preprocessing", None)
        if declared is None:
            return Preprocessing()
        return declared if isinstance(declared, Preprocessing) else Preprocessing.from_json(dict(declared))


ADAPTERS: tuple[ModelAdapter, ...] = (PythonAdapter(),)
