"""The adaptive device's parts on their own: the policy built from a study's candidates (exact
boundaries, the study's rule), the policy as the manifest stores it, the link estimator on a
modelled link, and the switcher's hysteresis."""

from __future__ import annotations

import math
from typing import Any

import pytest

from optimizer.deploy._estimate import LinkEstimator
from optimizer.deploy._policy import policy_of
from optimizer.deploy._policy_build import build_policy, min_rate_kbps
from optimizer.deploy._switch import Switcher
from optimizer.errors import UserError
from optimizer.system import SweepCandidate, bandwidth_sweep

NETWORK = {"name": "lan", "uplink_kbps": 20000.0, "downlink_kbps": 40000.0, "rtt_ms": 5.0}
NETWORK |= {"mss_bytes": 1448.0, "per_packet_overhead_bytes": 66.0}


def _candidate(trial: int, accuracy: float, wire_bytes: float, device_ms: float, ok: bool = True) -> SweepCandidate:
    costs = {"head_ms": device_ms, "coding_ms": 0.0, "rtt_ms": 5.0, "downlink_ms": 0.1, "request_ms": 1.0}
    costs |= {"decode_ms": 0.0, "tail_ms": 0.9, "wire_bytes": wire_bytes, "compute_energy_mj": 1.0}
    return SweepCandidate(trial, accuracy, costs | {"radio_energy_mj": 0.1}, ok)


# big and accurate; middle; small and fast but poor; an accurate one that breaks the budget
CANDIDATES = [
    _candidate(0, 0.92, 4000, 20.0),
    _candidate(1, 0.88, 800, 30.0),
    _candidate(2, 0.80, 100, 60.0),
    _candidate(3, 0.95, 100, 10.0, ok=False),
]


def _policy(deadline_ms: float = 100.0, frame_ms: float | None = 100.0, **kwargs: Any) -> Any:
    plan = build_policy(CANDIDATES, deadline_ms, frame_ms, NETWORK, "http", **kwargs)
    return plan, policy_of(plan.doc, set(range(len(plan.trials))))


def test_the_boundaries_are_each_configurations_own_minimum_rate() -> None:
    plan, policy = _policy()
    mins = {c.trial: min_rate_kbps(c, 100.0, 100.0) for c in CANDIDATES}
    # 100 ms deadline: trial 2 needs 100 B x 8 / (100 - 67) ms, trial 1 800 x 8 / 63, trial 0 4000 x 8 / 73
    assert mins[2] == pytest.approx(800 / 33) and mins[1] == pytest.approx(6400 / 63)
    assert mins[0] == pytest.approx(32000 / 73) and mins[3] is None  # over the budget: at no rate
    assert plan.trials == [0, 2, 1]  # tag 0: the choice at the study's own 20 Mbps; then from the lowest rate up
    lows = [r.low_kbps for r in policy.ranges]
    assert lows[0] == 0.0 and lows[1:] == pytest.approx([mins[2], mins[1], mins[0]], rel=1e-6)
    assert [r.tag for r in policy.ranges] == [1, 1, 2, 0] and math.isinf(policy.ranges[-1].high_kbps)
    assert [r.meets_deadline for r in policy.ranges] == [False, True, True, True]
    assert policy.choose(mins[1] * 0.999) == 1 and policy.choose(mins[1] * 1.001) == 2
    assert policy.choose(1e9) == 0 and policy.choose(1.0) == 1 and not policy.feasible_at(1.0)


def test_the_policy_agrees_with_the_bandwidth_sweep_everywhere() -> None:
    _, policy = _policy(deadline_ms=80.0, frame_ms=None)
    rates = [10 ** (i / 20) for i in range(20, 121)]
    rows = bandwidth_sweep(CANDIDATES, 80.0, None, rates)
    tags = {c["trial"]: c["tag"] for c in policy.doc["configurations"]}
    for rate, row in zip(rates, rows, strict=True):
        if row["trial"] is not None:
            assert policy.choose(rate) == tags[row["trial"]], rate
            assert policy.meets_deadline(policy.choose(rate), rate)


def test_equally_accurate_winners_switch_where_their_e2e_cross() -> None:
    a, b = _candidate(0, 0.9, 600, 2.0), _candidate(1, 0.9, 400, 8.0)  # b: fewer bytes, slower device
    plan = build_policy([a, b], 200.0, None, NETWORK, "http")
    policy = policy_of(plan.doc, {0, 1})
    crossing = (600 - 400) * 8 / 6.0  # 2 + 4800 / r = 8 + 3200 / r
    inner = [r for r in policy.ranges if r.meets_deadline]
    assert [r.trial for r in inner] == [1, 0] and inner[1].low_kbps == pytest.approx(crossing, rel=1e-6)


def test_no_feasible_configuration_is_one_line() -> None:
    with pytest.raises(UserError, match="no configuration of the study meets every constraint"):
        build_policy(CANDIDATES, 5.0, None, NETWORK, "http")
    with pytest.raises(UserError, match="needs a deadline"):
        build_policy(CANDIDATES, None, None, NETWORK, "http")


def test_a_malformed_policy_is_refused() -> None:
    plan, _ = _policy()
    with pytest.raises(UserError, match="tags \\[2\\] the bundle does not hold"):
        policy_of(plan.doc, {0, 1})
    broken = {**plan.doc, "ranges": plan.doc["ranges"][1:]}
    with pytest.raises(UserError, match="from 0 to infinity"):
        policy_of(broken, {0, 1, 2})
    with pytest.raises(UserError, match="malformed"):
        policy_of({"ranges": []}, {0})


def test_the_study_rule_ranks_configurations() -> None:
    _, policy = _policy()
    assert policy.better(0, 2, 1000.0) and not policy.better(2, 0, 1000.0)
    assert policy.e2e_ms(1, 100.0) == pytest.approx(67.0 + 800 / 100.0)  # tag 1: trial 2, 100 B


class _Link:
    """A modelled link: RTT + uplink serialization of the on-air bytes + a fixed server time."""

    def __init__(self, rate_kbps: float, rtt_ms: float) -> None:
        self.rate, self.rtt = rate_kbps, rtt_ms

    def elapsed(self, estimator: LinkEstimator, up: int, down: int, server_ms: float) -> float:
        return self.rtt + estimator.bits(up) / self.rate + estimator.downlink_ms(down) + server_ms


def test_the_estimator_finds_rate_and_rtt_and_follows_a_step() -> None:
    link, est = _Link(100.0, 8.0), LinkEstimator(20000.0, 5.0, 1448, 66, 40000.0)
    est.observe_probe(link.elapsed(est, 6, 2, 0.0) + 20.0, 6, 2)  # the first includes setting up
    est.observe_probe(link.elapsed(est, 6, 2, 0.0), 6, 2)
    assert est.rtt_ms == pytest.approx(8.0 + est.bits(6) * (1 / 100 - 1 / 20000), abs=1e-6)  # rate not known
    for _ in range(4):  # requests, then a probe every few seconds: each one halves the RTT's error (or better)
        for _ in range(10):
            est.observe(link.elapsed(est, 300, 220, 1.0), 1.0, 300, 220)
        assert est.observe_probe(link.elapsed(est, 6, 2, 0.0), 6, 2)[1]  # settled: it counts
    assert est.rtt_ms == pytest.approx(8.0, rel=0.02) and est.rate_kbps == pytest.approx(100.0, rel=0.02)
    link.rate = 40.0
    seen = [est.observe(link.elapsed(est, 300, 220, 1.0), 1.0, 300, 220) for _ in range(5)]
    assert seen[0] < 100.0 and seen[3] == pytest.approx(40.0, rel=0.1)  # 94 % of a step within 4 requests


def test_a_probe_while_the_rate_moves_is_set_aside() -> None:
    est = LinkEstimator(1000.0, 5.0, 1448, 66, 40000.0)
    est.observe_probe(5.0, 6, 2)
    before = est.rtt_ms
    for elapsed in (200.0, 60.0, 20.0):  # the rate rises fast: samples far apart
        est.observe(elapsed, 0.0, 400, 8)
    assert est.observe_probe(6.0, 6, 2) == (0.0, False) and est.rtt_ms == before  # not a 0 ms round trip
    for _ in range(3):
        est.observe(20.0, 0.0, 400, 8)
    assert est.observe_probe(6.0, 6, 2)[1] is True


def test_must_switches_at_once_prefer_switches_are_confirmed() -> None:
    _, policy = _policy()
    low = {c["tag"]: c["min_kbps"] for c in policy.doc["configurations"]}
    switcher = Switcher(policy, 0, margin=0.15, confirm=2)
    must = switcher.update(low[0] * 0.9)  # tag 0 misses the deadline: now, to the choice 15 % lower
    assert must is not None and (must.old, must.new, must.reason) == (0, policy.choose(low[0] * 0.9 / 1.15), "must")
    switcher = Switcher(policy, 2, margin=0.15, confirm=2)
    assert switcher.update(low[0] * 1.1) is None  # within the margin of tag 0's range: stay
    assert switcher.update(low[0] * 2) is None  # once clear...
    prefer = switcher.update(low[0] * 2)  # ... and confirmed
    assert prefer is not None and (prefer.new, prefer.reason) == (0, "prefer")


def test_an_estimate_hovering_at_a_boundary_does_not_flip_the_choice() -> None:
    _, policy = _policy()
    edge = policy.doc["configurations"][0]["min_kbps"]  # tag 0's own boundary
    switcher = Switcher(policy, 0, margin=0.15, confirm=2)
    switches = [switcher.update(edge * f) for f in (1.05, 1.02, 1.08, 1.01, 1.1, 1.03, 1.06)]
    assert switches == [None] * 7
    switches = [switcher.update(edge * f) for f in (0.97, 1.02, 1.05, 0.99, 1.04, 1.08)]
    assert [s.reason for s in switches if s is not None] == ["must"]  # down once, not back up within the margin


def test_narrow_ranges_go_to_the_configuration_below_when_asked() -> None:
    # same device time: each needs wire bytes x 8 / 33 ms of uplink; B's range is 6 % wide
    a, b, d = _candidate(0, 0.80, 100, 60.0), _candidate(1, 0.85, 104, 60.0), _candidate(2, 0.87, 110, 60.0)
    c = _candidate(3, 0.90, 400, 60.0)
    exact = build_policy([a, b, c, d], 100.0, None, NETWORK, "http")
    folded = build_policy([a, b, c, d], 100.0, None, NETWORK, "http", min_range_ratio=1.25)
    assert sorted(exact.trials) == [0, 1, 2, 3] and sorted(folded.trials) == [0, 2, 3]  # B is gone
    ranges = [(r["trial"], r["low_kbps"]) for r in folded.doc["ranges"] if r["meets_deadline"]]
    assert ranges == [(0, pytest.approx(800 / 33)), (2, pytest.approx(880 / 33)), (3, pytest.approx(3200 / 33))]
    policy = policy_of(folded.doc, set(range(3)))
    middle = 850 / 33  # where B was: A runs it, and A meets the deadline there
    assert policy.doc["configurations"][policy.choose(middle)]["trial"] == 0
    assert policy.meets_deadline(policy.choose(middle), middle)


def test_a_probe_far_under_the_first_round_trip_is_set_aside() -> None:
    est = LinkEstimator(1000.0, 5.0, 1448, 66, 40000.0)
    est.observe_probe(8.0, 6, 2)  # before any inference: the round trip (and the probe's few bits)
    rtt = est.rtt_ms
    for _ in range(3):
        est.observe(30.0, 0.0, 100, 8)  # steady samples: the rate has settled
    sample, counted = est.observe_probe(rtt * 0.3 + est.bits(6) * (22.0 / est.bits(100)), 6, 2)
    assert not counted and est.rtt_ms == rtt and sample < 0.5 * rtt
