"""The device's estimate of its link, from its own requests: uplink rate and round-trip time.

The model is the study's (optimizer.system): an exchange of ``up`` application bytes answered by
``down`` takes ``RTT + on_air(up) x 8 / uplink + on_air(down) x 8 / downlink`` on the network,
where ``on_air`` adds the link's per-packet headers at its MSS (as the study counts them), and the
downlink is the study's
(the bandwidth sweep, and so the policy, varies the uplink only): the network profile recorded in
the bundle's policy. Both transports count their bytes as they cross TCP (see _client, _stream);
the server's own time, which the answer carries, is subtracted.

- RTT: from probes (an empty payload, answered by nothing along the same path as an inference;
  see optimizer.protocol), sent after an idle spell and every few seconds when the device has time
  to spare: each gives ``elapsed - its uplink bits at the current rate - its downlink time``; the
  estimate is the minimum of the last few (queues and scheduling only ever add time). A probe
  differs from an inference by little more than the payload's bits (both carry the transport's
  headers and the link's packet headers), so the two cannot tell a shorter round trip from a faster
  uplink apart; the round trip is taken to change slowly and the rate fast: a probe counts when the
  last few rate samples agree (``settle`` ratio) or their spread moves its sample by less than
  ``tolerance_ms``, and its sample is at least ``floor`` times the least probe before the first
  inference (probes then see the round trip and, at most, their own few bytes; a later sample far
  under it is a rate estimate's error fed back, not a shorter route); else it is traced and set aside.
- Uplink rate: every inference gives ``(elapsed - server - RTT) / its bits``, a time per bit; an
  exponentially weighted mean of those (in time per bit, so that one fast sample cannot claim an
  infinite rate) is the estimate. With ``alpha`` = 0.5 a step in the rate is 94 % tracked after
  four requests.

1 bit per ms is 1 kbps, so times are in ms and rates in kbps throughout.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

__all__ = ["LinkEstimate", "LinkEstimator"]


@dataclass(frozen=True)
class LinkEstimate:
    rate_kbps: float
    rtt_ms: float


class LinkEstimator:
    """Smoothed uplink rate and RTT of the link the device's requests cross."""

    def __init__(
        self,
        initial_kbps: float,
        initial_rtt_ms: float,
        mss_bytes: int = 1448,
        per_packet_overhead_bytes: int = 0,
        downlink_kbps: float | None = None,
        alpha: float = 0.5,
        rtt_window: int = 5,
        max_kbps: float = 1e7,
        settle: float = 1.5,
        tolerance_ms: float = 3.0,
        floor: float = 0.5,
    ) -> None:
        """``downlink_kbps``: the downlink's rate (None: no time for the answers' bytes)."""
        if initial_kbps <= 0 or mss_bytes <= 0 or (downlink_kbps or 1) <= 0 or not 0 < alpha <= 1:
            raise ValueError("rates and the MSS are positive, and 0 < alpha <= 1")
        self.mss, self.overhead, self.downlink, self.alpha = mss_bytes, per_packet_overhead_bytes, downlink_kbps, alpha
        self.max_kbps, self.settle, self.tolerance_ms, self.floor = max_kbps, settle, tolerance_ms, floor
        self._ms_per_bit = 1.0 / initial_kbps
        self._rtts: deque[float] = deque([initial_rtt_ms], maxlen=rtt_window)
        self._samples: deque[float] = deque(maxlen=3)  # the last time-per-bit samples
        self._probed = False
        self._anchor = math.inf  # the least probe before any inference

    @property
    def rate_kbps(self) -> float:
        return min(self.max_kbps, 1.0 / self._ms_per_bit) if self._ms_per_bit > 0 else self.max_kbps

    @property
    def rtt_ms(self) -> float:
        return min(self._rtts)

    def estimate(self) -> LinkEstimate:
        return LinkEstimate(self.rate_kbps, self.rtt_ms)

    def on_air(self, app_bytes: int) -> int:
        """``app_bytes`` as the link carries them: with the headers of every packet."""
        return app_bytes + max(1, math.ceil(app_bytes / self.mss)) * self.overhead

    def bits(self, up: int) -> int:
        """The uplink bits of ``up`` application bytes."""
        return self.on_air(up) * 8

    def downlink_ms(self, down: int) -> float:
        return self.on_air(down) * 8 / self.downlink if self.downlink else 0.0

    def expected_ms(self, up: int, down: int) -> float:
        """What an exchange should take on the network by the current estimates."""
        return self.rtt_ms + self.bits(up) * self._ms_per_bit + self.downlink_ms(down)

    def _uncertain(self, bits: int) -> bool:
        """Whether the rate is moving too much to tell a probe's RTT from its serialization."""
        if not self._samples or max(self._samples) <= self.settle * min(self._samples):
            return False
        return bits * (max(self._samples) - min(self._samples)) > self.tolerance_ms

    def observe_probe(self, elapsed_ms: float, up: int, down: int) -> tuple[float, bool]:
        """A probe's round trip: (the RTT sample, whether it counts). The first replaces the guess."""
        bits = self.bits(up)
        recent = sorted(self._samples)[len(self._samples) // 2] if self._samples else self._ms_per_bit
        sample = max(0.0, elapsed_ms - bits * recent - self.downlink_ms(down))  # the median, not the lagging mean
        if not self._samples:  # before any inference: the round trip, and at most the probe's own bits
            self._anchor = min(self._anchor, sample)
        elif self._uncertain(bits) or sample < self.floor * self._anchor:
            return sample, False  # the rate is moving, or the sample is its error more than a round trip
        if not self._probed:
            self._rtts.clear()
            self._probed = True
        self._rtts.append(sample)
        return sample, True

    def observe(self, elapsed_ms: float, server_ms: float, up: int, down: int) -> float:
        """An inference's round trip: a new time-per-bit sample; returns the new rate estimate."""
        network = max(0.0, elapsed_ms - server_ms - self.rtt_ms - self.downlink_ms(down))
        sample = max(network / self.bits(up), 1.0 / self.max_kbps)
        self._samples.append(sample)
        self._ms_per_bit = self.alpha * sample + (1 - self.alpha) * self._ms_per_bit
        return self.rate_kbps
