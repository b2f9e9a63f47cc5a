"""The bandwidth sweep: which configuration is best at each uplink rate, from stored terms alone.

Each candidate's system-model terms (PathCosts.parts()) are re-priced at another uplink rate: only
the uplink serialization changes (uplink_ms = wire_bytes x 8 / rate), and with it transfer_ms,
e2e_ms and the per-frame link constraint. The best at a rate follows the study's own rule: the
highest val accuracy among the candidates that meet every constraint there (ties: lower e2e_ms).
This is the table a bandwidth-adaptive device follows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["SweepCandidate", "bandwidth_sweep", "sweep_rates"]


@dataclass(frozen=True)
class SweepCandidate:
    trial: int
    accuracy: float
    costs: dict[str, float]  # PathCosts.parts()
    static_ok: bool  # meets the constraints that do not depend on the rate (budget, memory, accuracy, energy)


def sweep_rates(low_kbps: float = 10.0, high_kbps: float = 1e6, per_decade: int = 6) -> list[float]:
    """Log-spaced uplink rates, 10 kbps to 1 Gbps by default."""
    decades = np.log10(high_kbps) - np.log10(low_kbps)
    count = round(float(decades) * per_decade) + 1
    return [float(f"{r:.4g}") for r in np.logspace(np.log10(low_kbps), np.log10(high_kbps), count)]


def _at_rate(costs: dict[str, float], rate_kbps: float) -> tuple[float, float]:
    """(uplink ms, e2e ms) of one candidate at ``rate_kbps``."""
    uplink = costs["wire_bytes"] * 8 / rate_kbps
    device = costs["head_ms"] + costs["coding_ms"]
    server = costs["request_ms"] + costs["decode_ms"] + costs["tail_ms"]
    return uplink, device + costs["rtt_ms"] + uplink + costs["downlink_ms"] + server


def bandwidth_sweep(
    candidates: Sequence[SweepCandidate],
    deadline_ms: float | None,
    frame_ms: float | None,
    rates_kbps: Sequence[float] | None = None,
) -> list[dict[str, Any]]:
    """One row per rate: the best candidate there (or None), its e2e_ms, and whether it changed."""
    rows: list[dict[str, Any]] = []
    previous: int | None = None
    for rate in rates_kbps or sweep_rates():
        best: tuple[float, float, int] | None = None
        chosen: tuple[SweepCandidate, float, float] | None = None
        for c in candidates:
            uplink, e2e = _at_rate(c.costs, rate)
            device = c.costs["head_ms"] + c.costs["coding_ms"]
            ok = c.static_ok and (deadline_ms is None or e2e <= deadline_ms)
            ok = ok and (frame_ms is None or (uplink <= frame_ms and device <= frame_ms))
            rank = (-c.accuracy, e2e, c.trial)
            if ok and (best is None or rank < best):
                best, chosen = rank, (c, uplink, e2e)
        trial = chosen[0].trial if chosen else None
        rows.append(
            {
                "uplink_kbps": rate,
                "trial": trial,
                "accuracy": chosen[0].accuracy if chosen else None,
                "e2e_ms": chosen[2] if chosen else None,
                "uplink_ms": chosen[1] if chosen else None,
                "energy_mj": (chosen[0].costs["compute_energy_mj"] + chosen[0].costs["radio_energy_mj"])
                if chosen
                else None,
                "changed": bool(rows) and trial != previous,
            }
        )
        previous = trial
    return rows
