"""Switching configurations by the policy, with hysteresis in the rate.

Two kinds of switch, treated differently:

- **must**: the configuration the device runs no longer meets the deadline at the estimated rate
  (by the study's model: the rate is under its ``min_kbps``). It switches at once, to what the
  policy names at the estimate less ``margin`` (so that the next dip of the estimate does not call
  for another switch): every request it waits is a likely deadline miss.
- **prefer**: the current configuration still meets the deadline, but the policy names another
  (a more accurate one at a higher rate, or a faster one among equals). It switches only when the
  policy names another configuration at the estimate, at the estimate less ``margin`` and at the
  estimate plus ``margin`` alike, and the one named at the estimate less ``margin`` is one the
  study's rule prefers to the current, for ``confirm`` estimates in a row; then to that one. So an
  estimate hovering around a boundary does not flip the choice back and forth, and a climb needs
  the rate ``margin`` above the next range's start.
"""

from __future__ import annotations

from dataclasses import dataclass

from optimizer.deploy._policy import Policy

__all__ = ["Switch", "Switcher"]


@dataclass(frozen=True)
class Switch:
    old: int
    new: int
    reason: str  # "must": the old one misses the deadline at the estimate; "prefer": the policy's choice


class Switcher:
    """The configuration to run, updated with each new rate estimate."""

    def __init__(self, policy: Policy, tag: int, margin: float = 0.15, confirm: int = 2) -> None:
        if margin < 0 or confirm < 1:
            raise ValueError(f"the margin is >= 0 and confirm >= 1, got {margin}, {confirm}")
        self.policy, self.tag, self.margin, self.confirm = policy, tag, margin, confirm
        self._streak = 0

    def update(self, rate_kbps: float) -> Switch | None:
        """The switch this estimate calls for, if any (already applied to ``tag``)."""
        safe = self.policy.choose(rate_kbps / (1 + self.margin))
        if not self.policy.meets_deadline(self.tag, rate_kbps):
            target = safe if safe != self.tag else self.policy.choose(rate_kbps)
            return self._switch(target, "must") if target != self.tag else None
        named = {safe, self.policy.choose(rate_kbps), self.policy.choose(rate_kbps * (1 + self.margin))}
        if self.tag in named or not self.policy.better(safe, self.tag, rate_kbps):
            self._streak = 0
            return None
        self._streak += 1
        return self._switch(safe, "prefer") if self._streak >= self.confirm else None

    def _switch(self, target: int, reason: str) -> Switch:
        switch = Switch(self.tag, target, reason)
        self.tag, self._streak = target, 0
        return switch
