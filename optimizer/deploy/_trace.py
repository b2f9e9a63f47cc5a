"""What ``infer --adaptive`` records: one row per frame, one per switch, one per probe, and a summary;
``Trace.to_json()`` is the document ``--format json`` prints (a trace a user can plot)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["FrameRecord", "SwitchRecord", "Trace"]


@dataclass(frozen=True)
class FrameRecord:
    frame: int
    image: str
    t_s: float  # when it started, from the start of the run
    tag: int
    class_index: int
    label: str
    score: float | None
    payload_bytes: int
    up_bytes: int  # as they crossed TCP (framing or HTTP head included)
    down_bytes: int
    head_ms: float
    coding_ms: float
    network_ms: float  # the round trip, the server's time included
    server_ms: float
    e2e_ms: float  # head + coding + network
    lag_ms: float  # how late it started after it was due
    met_deadline: bool | None
    rate_kbps: float  # the estimate after this frame
    rtt_ms: float


@dataclass(frozen=True)
class SwitchRecord:
    t_s: float
    frame: int  # the first frame sent with the new configuration
    rate_kbps: float
    rtt_ms: float
    old: int
    new: int
    reason: str


@dataclass
class Trace:
    """Everything ``infer --adaptive --format json`` writes."""

    bundle: str
    fps: float | None
    deadline_ms: float | None
    fixed_tag: int | None
    started_at: float  # time.time() at t_s = 0
    frames: list[FrameRecord] = field(default_factory=list)
    switches: list[SwitchRecord] = field(default_factory=list)
    probes: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        met = [f.met_deadline for f in self.frames if f.met_deadline is not None]
        tags: dict[str, int] = {}
        for f in self.frames:
            tags[str(f.tag)] = tags.get(str(f.tag), 0) + 1
        span = self.frames[-1].t_s - self.frames[0].t_s if len(self.frames) > 1 else 0.0
        return {
            "frames": len(self.frames),
            "switches": len(self.switches),
            "probes": len(self.probes),
            "deadline_met_fraction": sum(met) / len(met) if met else None,
            "frames_per_tag": tags,
            "achieved_fps": (len(self.frames) - 1) / span if span > 0 else None,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "bundle": self.bundle,
            "fps": self.fps,
            "deadline_ms": self.deadline_ms,
            "fixed_tag": self.fixed_tag,
            "started_at": self.started_at,
            "summary": self.summary(),
            "switches": [asdict(s) for s in self.switches],
            "probes": self.probes,
            "frames": [asdict(f) for f in self.frames],
        }
