"""Quantities: every number of a profile with the source it was taken from, read strictly."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from optimizer.config._schema import Reader

__all__ = ["Quantity", "quantity", "section"]

# Fields whose value may be 0 (everything else must be strictly positive).
_MAY_BE_ZERO = {
    "layer_overhead_ms",
    "run_overhead_ms",
    "weight_cache_bytes",
    "rtt_ms",
    "per_packet_overhead_bytes",
    "nj_per_mac",
    "nj_per_byte_sent",
    "nj_per_byte_received",
    "request_ms",
}
_MAY_BE_ZERO_SUFFIXES = ("call_ms",)


@dataclass(frozen=True)
class Quantity:
    """A number with the source it was taken from (or ``estimate: ...``)."""

    value: float
    source: str


def quantity(reader: Reader, key: str) -> Quantity:
    q = reader.child(key)
    q.check_keys({"value", "source"})
    strict = key not in _MAY_BE_ZERO and not key.endswith(_MAY_BE_ZERO_SUFFIXES)
    return Quantity(q.number("value", 0.0, strict=strict), q.text("source"))


def section(
    reader: Reader,
    key: str,
    cls: type,
    texts: frozenset[str] = frozenset(),
    flags: frozenset[str] = frozenset(),
    nested: dict[str, type] | None = None,
) -> Any:
    """One mapping of quantities (plus the named text, flag and nested fields) as ``cls``."""
    sec = reader.child(key)
    names = {f.name for f in fields(cls)}
    sec.check_keys(names)
    values: dict[str, Any] = {}
    for name in names:
        if name in texts:
            values[name] = sec.text(name)
        elif name in flags:
            values[name] = sec.boolean(name)
        elif nested and name in nested:
            values[name] = section(sec, name, nested[name])
        else:
            values[name] = quantity(sec, name)
    return cls(**values)
