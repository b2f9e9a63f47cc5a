"""Strict reading of YAML data: unknown keys, missing fields, wrong types and impossible values
are errors that name the file, the field and the rule. YAML holds data only (``safe_load``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from optimizer.errors import UserError

__all__ = ["Reader", "load_yaml_mapping"]


def load_yaml_mapping(path: Path) -> dict[str, Any]:
    """``yaml.safe_load`` a file that must hold a mapping."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}; give an existing YAML file") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}: not valid YAML{where}; fix the syntax") from exc
    if not isinstance(data, dict):
        raise UserError(f"{path}: the top level must be a mapping of fields, got {type(data).__name__}")
    return data


class Reader:
    """Walks one mapping of a YAML file, remembering the dotted field path for error messages."""

    def __init__(self, data: Any, path: Path, field: str = "") -> None:
        self.path, self.field = path, field
        if not isinstance(data, dict):
            raise self.error(f"must be a mapping, got {type(data).__name__}")
        self.data = data

    def error(self, rule: str, key: str | None = None) -> UserError:
        name = ".".join(p for p in (self.field, key) if p) or "(top level)"
        return UserError(f"{self.path}: field {name}: {rule}")

    def check_keys(self, required: set[str], optional: frozenset[str] = frozenset()) -> None:
        unknown = sorted(set(self.data) - required - optional)
        if unknown:
            allowed = ", ".join(sorted(required | optional))
            raise self.error(f"unknown key (allowed: {allowed})", unknown[0])
        missing = sorted(required - set(self.data))
        if missing:
            raise self.error("is required but missing", missing[0])

    def child(self, key: str) -> Reader:
        return Reader(self.data[key], self.path, ".".join(p for p in (self.field, key) if p))

    def text(self, key: str) -> str:
        value = self.data[key]
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"must be a non-empty string, got {value!r}", key)
        return value

    def number(self, key: str, minimum: float = 0.0, strict: bool = True) -> float:
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(f"must be a number, got {value!r}", key)
        if value < minimum or (strict and value == minimum):
            sign = ">" if strict else ">="
            raise self.error(f"must be {sign} {minimum:g}, got {value!r}", key)
        return float(value)

    def boolean(self, key: str) -> bool:
        value = self.data[key]
        if not isinstance(value, bool):
            raise self.error(f"must be true or false, got {value!r}", key)
        return value

    def values(
        self, key: str, kind: type, allowed: tuple[Any, ...] | None = None, minimum: float | None = None
    ) -> tuple[Any, ...]:
        """A non-empty list of distinct values of ``kind`` (optionally among ``allowed``, >= ``minimum``)."""
        values = self.data[key]
        if not isinstance(values, list) or not values:
            raise self.error(f"must be a non-empty list, got {values!r}", key)
        out = []
        for v in values:
            number = isinstance(v, int | float) and not isinstance(v, bool)
            ok = number if kind is float else isinstance(v, kind) and not isinstance(v, bool)
            if not ok:
                raise self.error(f"must hold {kind.__name__} values, got {v!r}", key)
            if allowed is not None and v not in allowed:
                raise self.error(f"values must be among {', '.join(map(str, allowed))}, got {v!r}", key)
            if minimum is not None and v < minimum:
                raise self.error(f"values must be >= {minimum:g}, got {v!r}", key)
            out.append(kind(v))
        if len(set(out)) != len(out):
            raise self.error(f"must not repeat values, got {values!r}", key)
        return tuple(out)
