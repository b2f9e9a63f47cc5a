"""The policy of an adaptive bundle: uplink rate -> configuration tag, as the manifest stores it.

An adaptive bundle (``split-opt export --adaptive``) holds several configurations of one study, each
with a 6-bit configuration tag that its payloads carry (``optimizer.protocol.read_tag``). Its
manifest's ``policy`` says which one to run at which uplink rate: the study's own rule (highest val
accuracy among the configurations meeting every constraint at that rate, ties: lower e2e_ms),
evaluated by the bandwidth sweep for the deadline given at export. The ranges cover every rate
from 0 to infinity, in increasing order; below the lowest rate at which any configuration meets
the deadline the policy names the one that needs the least rate, marked ``meets_deadline: false``.

Standard library only: the device install reads it (see _adaptive).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Any

from optimizer.errors import UserError

__all__ = ["Policy", "PolicyRange", "policy_of"]


@dataclass(frozen=True)
class PolicyRange:
    """Rates in [low_kbps, high_kbps) run configuration ``tag``."""

    low_kbps: float
    high_kbps: float  # math.inf for the last range
    tag: int
    trial: int
    meets_deadline: bool
    val_accuracy: float
    e2e_ms: tuple[float, float] | None  # the model's e2e at the two ends (the top end capped at the sweep's)

    def to_json(self) -> dict[str, Any]:
        return {
            "low_kbps": self.low_kbps,
            "high_kbps": None if math.isinf(self.high_kbps) else self.high_kbps,
            "tag": self.tag,
            "trial": self.trial,
            "meets_deadline": self.meets_deadline,
            "val_accuracy": self.val_accuracy,
            "e2e_ms": list(self.e2e_ms) if self.e2e_ms is not None else None,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> PolicyRange:
        high = doc["high_kbps"]
        e2e = doc.get("e2e_ms")
        return cls(
            float(doc["low_kbps"]),
            math.inf if high is None else float(high),
            int(doc["tag"]),
            int(doc["trial"]),
            bool(doc["meets_deadline"]),
            float(doc["val_accuracy"]),
            (float(e2e[0]), float(e2e[1])) if e2e else None,
        )


@dataclass(frozen=True)
class Policy:
    """The manifest's ``policy``: ranges over the uplink rate, and what each configuration needs."""

    ranges: tuple[PolicyRange, ...]
    min_kbps: dict[int, float]  # tag -> the lowest uplink rate at which it meets every constraint
    configs: dict[int, dict[str, Any]]  # tag -> the policy's entry: val_accuracy, fixed_ms, wire_bytes, ...
    deadline_ms: float | None
    frame_ms: float | None
    network: dict[str, Any]  # the study's link: uplink/downlink kbps, rtt ms, mss and per-packet overhead bytes
    transport: str
    doc: dict[str, Any]  # the manifest's document, as written

    @property
    def fps(self) -> float | None:
        return 1000.0 / self.frame_ms if self.frame_ms else None

    @property
    def tags(self) -> list[int]:
        return sorted(self.min_kbps)

    def choose(self, rate_kbps: float) -> int:
        """The tag the policy runs at ``rate_kbps``."""
        lows = [r.low_kbps for r in self.ranges]
        return self.ranges[max(0, bisect.bisect_right(lows, rate_kbps) - 1)].tag

    def range_at(self, rate_kbps: float) -> PolicyRange:
        lows = [r.low_kbps for r in self.ranges]
        return self.ranges[max(0, bisect.bisect_right(lows, rate_kbps) - 1)]

    def meets_deadline(self, tag: int, rate_kbps: float) -> bool:
        """Whether configuration ``tag`` meets every constraint at ``rate_kbps`` (by the study's model)."""
        return rate_kbps >= self.min_kbps[tag]

    def e2e_ms(self, tag: int, rate_kbps: float) -> float:
        """The study's model of configuration ``tag``'s e2e_ms at ``rate_kbps``."""
        c = self.configs[tag]
        return float(c["fixed_ms"]) + float(c["wire_bytes"]) * 8 / rate_kbps

    def better(self, a: int, b: int, rate_kbps: float) -> bool:
        """Whether the study's rule prefers configuration ``a`` to ``b`` at ``rate_kbps`` (higher val
        accuracy; ties: lower e2e_ms)."""
        rank_a = (-float(self.configs[a]["val_accuracy"]), self.e2e_ms(a, rate_kbps))
        return rank_a < (-float(self.configs[b]["val_accuracy"]), self.e2e_ms(b, rate_kbps))

    def feasible_at(self, rate_kbps: float) -> bool:
        """Whether some configuration meets every constraint at ``rate_kbps``."""
        return self.range_at(rate_kbps).meets_deadline


def policy_of(doc: dict[str, Any], tags: set[int]) -> Policy:
    """The manifest's ``policy`` document, checked against the bundle's tags; BundleError-like UserError."""
    try:
        ranges = tuple(PolicyRange.from_json(r) for r in doc["ranges"])
        configs = {int(c["tag"]): dict(c) for c in doc["configurations"]}
        min_kbps = {tag: float(c["min_kbps"]) for tag, c in configs.items()}
        numbers = ("min_kbps", "val_accuracy", "fixed_ms", "wire_bytes")
        if any(not isinstance(c.get(key), int | float) for c in configs.values() for key in numbers):
            raise ValueError(f"every configuration needs {', '.join(numbers)} as numbers")
        network = dict(doc["network"])
        policy = Policy(
            ranges, min_kbps, configs, doc.get("deadline_ms"), doc.get("frame_ms"), network, str(doc["transport"]), doc
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"the bundle's policy is malformed ({type(exc).__name__}: {exc}); re-export it") from exc
    if not ranges or ranges[0].low_kbps != 0.0 or not math.isinf(ranges[-1].high_kbps):
        raise UserError("the bundle's policy does not cover every rate from 0 to infinity; re-export it")
    named = {r.tag for r in ranges} | set(min_kbps)
    if not named <= tags:
        raise UserError(f"the bundle's policy names tags {sorted(named - tags)} the bundle does not hold; re-export it")
    return policy
