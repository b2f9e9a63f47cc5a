"""The bandwidth-adaptive device (``split-opt infer --adaptive``): frames at a steady rate, each sent
with the configuration the policy names for the link the device estimates, and a trace of it all.

For each frame (an image, read before its clock starts, as a camera hands it over): run the head and
the codec of the current configuration (its payloads carry that configuration's tag), send, wait for
the answer; feed the exchange's time and bytes to the estimator (_estimate) and the new estimate to
the switcher (_switch). Frames are due every 1 / fps; when an answer arrives after the next frame
was due, the next starts at once with the latest frame the camera made (``lag_ms``: how old it
is). The link is probed with the transport's smallest exchange before the first frame, after an
idle spell, and every ``probe_every_s`` when the time until the next frame leaves room for it.

``fixed_tag`` runs one configuration through the same loop (estimates still traced, no switch):
the comparison a fixed deployment gives.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from optimizer.codecs import CodecError
from optimizer.deploy._bundle import Bundle
from optimizer.deploy._estimate import LinkEstimator
from optimizer.deploy._halves import DeviceHalf, load_image
from optimizer.deploy._policy import Policy
from optimizer.deploy._switch import Switch, Switcher
from optimizer.deploy._trace import FrameRecord, SwitchRecord, Trace
from optimizer.errors import UserError

__all__ = ["AdaptiveOptions", "FrameRecord", "SwitchRecord", "Trace", "run_adaptive"]


class Transport(Protocol):
    last_bytes: tuple[int, int]

    def send(self, payload: bytes) -> tuple[dict[str, Any], float]: ...

    def probe(self) -> float: ...


@dataclass(frozen=True)
class AdaptiveOptions:
    fps: float | None = None  # None: the policy's (export --fps), else one frame after another
    fixed_tag: int | None = None  # run this configuration only
    idle_s: float = 1.0  # probe before a frame that follows this much silence
    probe_every_s: float = 2.0
    margin: float = 0.15  # hysteresis (see _switch)
    confirm: int = 2
    alpha: float = 0.5  # the rate estimate's smoothing (see _estimate)


def _estimator(policy: Policy, alpha: float) -> LinkEstimator:
    net = policy.network
    return LinkEstimator(
        float(net["uplink_kbps"]),
        float(net["rtt_ms"]),
        int(net["mss_bytes"]),
        int(net["per_packet_overhead_bytes"]),
        float(net["downlink_kbps"]),
        alpha,
    )


class _Run:
    """One pass over the frames (state shared by the steps of the loop)."""

    def __init__(
        self,
        bundle: Bundle,
        server: Transport,
        options: AdaptiveOptions,
        on_switch: Callable[[SwitchRecord], object] | None,
    ) -> None:
        policy = bundle.policy
        if policy is None:
            raise UserError(f"bundle {bundle.name} has no policy; export one with `split-opt export --adaptive`")
        if options.fixed_tag is not None and options.fixed_tag not in bundle.tags:
            tags = bundle.tags
            raise UserError(f"--config {options.fixed_tag} is not a tag of bundle {bundle.name}; it holds {tags}")
        self.policy, self.server, self.options, self.on_switch = policy, server, options, on_switch
        self.devices = {c.tag: DeviceHalf(c) for c in bundle.configurations}
        self.fps = options.fps or policy.fps
        self.estimator = _estimator(policy, options.alpha)
        start = policy.choose(self.estimator.rate_kbps) if options.fixed_tag is None else options.fixed_tag
        self.switcher = Switcher(policy, start, options.margin, options.confirm)
        self.trace = Trace(bundle.name, self.fps, policy.deadline_ms, options.fixed_tag, time.time())
        self.t0 = time.perf_counter()
        self.last_exchange = self.last_probe = -1e9

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def probe(self) -> None:
        elapsed_ms = self.server.probe() * 1e3
        up, down = self.server.last_bytes
        rtt, counted = self.estimator.observe_probe(elapsed_ms, up, down)
        self.last_exchange = self.last_probe = self.now()
        probe = {"t_s": self.last_probe, "elapsed_ms": elapsed_ms, "rtt_sample_ms": rtt, "counted": counted}
        self.trace.probes.append(probe)

    def maybe_probe(self, due: float) -> None:
        """Probe if it has been a while and the next frame leaves room for one."""
        if self.now() - self.last_probe < self.options.probe_every_s:
            return
        up, down = self.server.last_bytes  # a probe is smaller than what was last sent
        if due - self.now() > 2 * self.estimator.expected_ms(up, down) / 1e3:
            self.probe()

    def frame(self, index: int, path: Path, due: float) -> None:
        tag = self.switcher.tag
        device = self.devices[tag]
        native = load_image(path, device.image_mode)  # the camera's frame: not on the clock
        if self.now() - self.last_exchange > self.options.idle_s:
            self.probe()  # after silence the estimate is stale
        started = self.now()
        try:
            encoded = device.encode(native)
        except CodecError as exc:
            raise UserError(f"image {path} cannot be encoded by configuration {tag}: {exc}") from exc
        answer, network_s = self.server.send(encoded.payload)
        self.last_exchange = self.now()
        up, down = self.server.last_bytes
        server_ms = float(answer["server_ms"])
        self.estimator.observe(network_s * 1e3, server_ms, up, down)
        estimate = self.estimator.estimate()
        e2e = (encoded.head_s + encoded.coding_s + network_s) * 1e3
        deadline = self.policy.deadline_ms
        record = FrameRecord(
            frame=index,
            image=str(path),
            t_s=started,
            tag=tag,
            class_index=int(answer["class_index"]),
            label=str(answer["label"]),
            score=answer["score"],
            payload_bytes=len(encoded.payload),
            up_bytes=up,
            down_bytes=down,
            head_ms=encoded.head_s * 1e3,
            coding_ms=encoded.coding_s * 1e3,
            network_ms=network_s * 1e3,
            server_ms=server_ms,
            e2e_ms=e2e,
            lag_ms=max(0.0, started - due) * 1e3,
            met_deadline=None if deadline is None else e2e <= deadline,
            rate_kbps=estimate.rate_kbps,
            rtt_ms=estimate.rtt_ms,
        )
        self.trace.frames.append(record)
        if self.options.fixed_tag is None:
            self.switch(self.switcher.update(estimate.rate_kbps), index + 1)

    def switch(self, switch: Switch | None, next_frame: int) -> None:
        if switch is None:
            return
        estimate = self.estimator.estimate()
        record = SwitchRecord(
            self.now(), next_frame, estimate.rate_kbps, estimate.rtt_ms, switch.old, switch.new, switch.reason
        )
        self.trace.switches.append(record)
        if self.on_switch is not None:
            self.on_switch(record)


def run_adaptive(
    bundle: Bundle,
    images: Sequence[Path],
    server: Transport,
    options: AdaptiveOptions | None = None,
    on_switch: Callable[[SwitchRecord], object] | None = None,
) -> Trace:
    """Send every image, in order, as one frame each; the trace of frames, switches and probes."""
    run = _Run(bundle, server, options or AdaptiveOptions(), on_switch)
    for _ in range(3):  # the first includes setting up the connection; the estimate keeps the least
        run.probe()
    period = 1.0 / run.fps if run.fps else 0.0
    due = run.now()
    for index, path in enumerate(images):
        if period:
            run.maybe_probe(due)
            time.sleep(max(0.0, due - run.now()))
        run.frame(index, path, due)
        due = _next_due(due, period, run.now())
    return run.trace


def _next_due(due: float, period: float, now: float) -> float:
    """When the next frame is due: one period on, or, when the device is late, the latest frame
    the camera has produced by now (the grid of 1 / fps continues; lag stays under one period)."""
    if not period:
        return now
    due += period
    return due + ((now - due) // period) * period if now > due else due
