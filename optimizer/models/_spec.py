"""Model specs: the identity of a model everywhere (caches, trials, reports, bundles).

A spec string is ``FAMILY`` or ``FAMILY:KEY=VALUE[,KEY=VALUE...]`` (``mobilenetv2:alpha=1.0``,
``resnet18``), or ``python:package.module:factory`` for a user's own ``nn.Module``. Each family's
adapter owns its parameters; parsing writes every parameter out, defaults included, in the adapter's
order and canonical number format, so ``parse(str(parse(s))) == parse(s)`` and two strings that mean
the same model give equal specs (``mobilenetv2`` == ``mobilenetv2:alpha=1``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from optimizer.errors import UserError

__all__ = ["ModelSpec", "Param", "format_number", "parse_params"]


def format_number(value: float) -> str:
    """Canonical text of a float parameter: shortest form, always with a decimal point (``1.0``, ``0.35``)."""
    text = f"{value:g}"
    return text if any(c in text for c in ".en") else text + ".0"


@dataclass(frozen=True)
class ModelSpec:
    """A family and its parameters, in canonical form. Build with the registry's ``parse_model_spec``.

    Attributes:
        family: the registry key (``mobilenetv2``, ``resnet18``, ``python``).
        args: the canonical text after ``FAMILY:`` (``alpha=1.0``, ``pkg.mod:make``), or ``""``.
        values: the parsed parameters (name -> typed value); derived from ``args``, not compared.
    """

    family: str
    args: str = ""
    values: tuple[tuple[str, Any], ...] = field(default=(), compare=False, hash=False)

    def __str__(self) -> str:
        return f"{self.family}:{self.args}" if self.args else self.family

    def get(self, name: str) -> Any:
        """One parameter's value (KeyError names the family's parameters when it has no ``name``)."""
        for key, value in self.values:
            if key == name:
                return value
        raise KeyError(f"{self} has no parameter {name!r} (it has {[k for k, _ in self.values]})")


@dataclass(frozen=True)
class Param:
    """One parameter of a family: its name, type, default and allowed range (``low < value <= high``)."""

    name: str
    kind: type = float
    default: Any = None
    low: float | None = None
    high: float | None = None
    implicit: bool = False  # the canonical text leaves the default out (``resnet18`` = ``resnet18:width=1.0``)

    def parse(self, text: str, family: str) -> Any:
        try:
            value = self.kind(text)
        except ValueError:
            raise UserError(f"{family} parameter {self.name} must be a {self.kind.__name__}, got {text!r}") from None
        return self.check(value, family)

    def check(self, value: Any, family: str) -> Any:
        if (self.low is not None and value <= self.low) or (self.high is not None and value > self.high):
            raise UserError(f"{family} parameter {self.name} must be in ({self.low}, {self.high}], got {value!r}")
        return value

    def format(self, value: Any) -> str:
        return format_number(value) if self.kind is float else str(value)


def parse_params(family: str, args: str, params: tuple[Param, ...]) -> ModelSpec:
    """``KEY=VALUE,...`` -> a canonical spec; unknown or repeated keys are errors, missing ones take defaults."""
    given: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in args.split(","))):
        key, eq, text = item.partition("=")
        key = key.strip()
        known = [p.name for p in params]
        if not eq or key not in known:
            hint = f"its parameters are {', '.join(known)}" if known else "it takes no parameters"
            raise UserError(f"model spec {family}:{args} has {item!r}, which {family} does not take; {hint}")
        if key in given:
            raise UserError(f"model spec {family}:{args} gives {key} twice; give it once")
        given[key] = text.strip()
    values = tuple(
        (p.name, p.parse(given[p.name], family) if p.name in given else p.check(p.default, family)) for p in params
    )
    shown = [(p, v) for p, (_, v) in zip(params, values, strict=True) if not (p.implicit and v == p.default)]
    canonical = ",".join(f"{p.name}={p.format(v)}" for p, v in shown)
    return ModelSpec(family, canonical, values)
