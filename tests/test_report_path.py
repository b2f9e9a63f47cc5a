"""The report's whole-path figures and named metrics, checked without a browser: the latency
breakdown, the bandwidth sweep and its policy, axes taken from the study's objectives, the
network and constraints in the context, and studies written before named metrics."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from synthetic_study import (
    BLOCK_KS,
    MODELS,
    UPLINK_KBPS,
    hand_trial,
    numbered,
    summary_of,
    synthetic_results,
    synthetic_trials,
)

from optimizer.report import (
    SEGMENTS,
    StudyResults,
    SweepChange,
    breakdown_info,
    build_report,
    context_info,
    front_info,
    plot_axes,
    policy_table,
    projection_info,
    results_from_trials,
    staircase,
    sweep_info,
    table_info,
)
from optimizer.system import sweep_rates

optuna.logging.set_verbosity(optuna.logging.WARNING)

PCA = {"kind": "pca", "geometry": "channel", "tile": 1, "components": 4, "bits": 4, "coder": "ans"}
FLOAT16 = {"kind": "float16"}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> StudyResults:
    return synthetic_results(120, tmp_path_factory.mktemp("reports") / "synthetic", seed=3, deadline_ms=40.0)


def _pair(tmp_path: Path, deadline_ms: float) -> StudyResults:
    """A: more accurate, 20 kB on the link; B: less accurate, 100 B on the link."""
    trials = numbered(
        [
            hand_trial(
                MODELS[1.0], 32, BLOCK_KS[12], FLOAT16, 0.90, 20_000, 2.0, wire_bytes=20_000, deadline_ms=deadline_ms
            ),
            hand_trial(MODELS[1.0], 32, BLOCK_KS[9], PCA, 0.80, 60, 1.0, wire_bytes=100, deadline_ms=deadline_ms),
        ]
    )
    return results_from_trials(tmp_path, "pair", trials, summary_of(trials, 1e12, deadline_ms))


def _fixed_ms(results: StudyResults, trial: int) -> float:
    """e2e_ms of a trial less its uplink time: what does not depend on the rate."""
    record = next(t for t in results.trials if t.number == trial)
    assert record.costs is not None
    return record.metrics["e2e_ms"] - record.costs["uplink_ms"]


def test_breakdown_segments_add_up_to_each_entrys_e2e(results: StudyResults) -> None:
    info = breakdown_info(results)
    by_number = {t.number: t for t in results.trials}
    assert sorted(r.trial for r in info.rows) == sorted(results.pareto_trials) and not info.missing
    assert [r.e2e_ms for r in info.rows] == sorted(r.e2e_ms for r in info.rows)
    for row in info.rows:
        record = by_number[row.trial]
        assert list(row.segments) == list(SEGMENTS)
        assert sum(row.segments.values()) == pytest.approx(row.e2e_ms, rel=1e-9)
        assert row.e2e_ms == record.metrics["e2e_ms"]
        assert row.segments["transfer"] == pytest.approx(record.costs["uplink_ms"] + record.costs["downlink_ms"])
        assert row.segments["device compute"] + row.segments["device coding"] == pytest.approx(
            record.metrics["device_ms"]
        )
        assert row.label.startswith(f"trial {row.trial}: mobilenetv2:alpha=")
    assert info.deadline_ms == 40.0 and info.best_trial == results.summary["best"]["trial"]


def test_sweep_marks_the_rate_where_a_pair_of_configurations_swaps(tmp_path: Path) -> None:
    results = _pair(tmp_path, deadline_ms=200.0)
    a_fixed = _fixed_ms(results, 0)
    # A (trial 0) fits the deadline from the first rate where its 20 kB cross in the time left.
    swap = min(r for r in sweep_rates() if a_fixed + 20_000 * 8 / r <= 200.0)
    info = sweep_info(results)
    assert info.rates_kbps == sweep_rates()
    assert info.trials == [1 if r < swap else 0 for r in info.rates_kbps]
    assert info.changes == [SweepChange(swap, 1, 0, info.labels[info.rates_kbps.index(swap)])]
    assert "float16" in info.changes[0].label and not info.infeasible and info.note == ""
    assert [(p.trial, p.low_kbps, p.high_kbps) for p in info.policy] == [
        (1, 10.0, max(r for r in info.rates_kbps if r < swap)),
        (0, swap, 1e6),
    ]
    b_fixed = _fixed_ms(results, 1)
    assert info.e2e_ms[0] == pytest.approx(b_fixed + 100 * 8 / 10.0)
    assert info.policy[1].e2e_ms == pytest.approx((a_fixed + 20_000 * 8 / swap, a_fixed + 20_000 * 8 / 1e6))


def test_sweep_says_where_nothing_is_feasible(tmp_path: Path) -> None:
    results = _pair(tmp_path, deadline_ms=40.0)  # B needs 80 ms for its 100 B at 10 kbps
    info = sweep_info(results)
    b_fixed = _fixed_ms(results, 1)
    first = min(r for r in sweep_rates() if b_fixed + 100 * 8 / r <= 40.0)
    none = [r for r in info.rates_kbps if r < first]
    assert none and info.trials[: len(none)] == [None] * len(none)
    assert info.infeasible[0] == (10.0, none[-1]) and info.policy[0].trial is None
    assert info.note.startswith("no configuration meets every constraint at 10-")
    assert info.changes[0] == SweepChange(first, None, 1, info.labels[len(none)])
    table = policy_table(info)
    assert len(table.rows) == len(info.policy) and table.rows[0][1:3] == ("-", "no feasible configuration")


def test_a_study_without_a_sweep_says_so(tmp_path: Path) -> None:
    results = _pair(tmp_path, deadline_ms=200.0)
    del results.summary["bandwidth_sweep"]
    info = sweep_info(results)
    assert not info.rates_kbps and "no bandwidth sweep" in info.note
    assert build_report(results).points["sweep"] == 0


def test_the_breakdown_and_sweep_figures_count_their_points(results: StudyResults) -> None:
    report = build_report(results)
    info, sweep = breakdown_info(results), sweep_info(results)
    assert report.points["breakdown"] == len(SEGMENTS) * len(info.rows)
    assert report.points["sweep"] == 2 * len(sweep.rates_kbps) + len(sweep.changes)
    assert 'id="sweep-policy"' in report.html and "deadline 40 ms" in report.html
    assert sweep.link_kbps is not None and sweep.link_kbps != UPLINK_KBPS  # pi4's own link, from its profile


def test_axes_follow_the_study_objectives() -> None:
    axes, note = plot_axes(("accuracy", "e2e_ms", "energy_mj"))
    assert [a.metric for a in axes] == ["e2e_ms", "energy_mj", "accuracy"] and note == ""
    axes, note = plot_axes(("e2e_ms", "accuracy", "wire_bytes", "energy_mj"))
    assert [a.metric for a in axes] == ["e2e_ms", "wire_bytes", "accuracy"]
    assert "first three" in note and "energy_mj" in note
    axes, note = plot_axes(("payload_bytes", "e2e_ms"))
    assert [a.metric for a in axes] == ["payload_bytes", "e2e_ms", "accuracy"] and "for context" in note
    axes, _ = plot_axes(("e2e_ms", "energy_mj", "payload_bytes"))  # no accuracy: the first objective goes up
    assert [a.metric for a in axes] == ["energy_mj", "payload_bytes", "e2e_ms"] and not axes[2].up


def test_a_staircase_follows_the_directions_of_its_metrics() -> None:
    points = [(1.0, 50.0, 0), (2.0, 40.0, 1), (3.0, 45.0, 2), (0.5, 90.0, 3)]
    down = staircase(points, "feasible", x_up=False, y_up=False)  # both minimised
    assert down.trials == [3, 0, 1]
    up = staircase(points, "feasible", x_up=True, y_up=True)  # both maximised: from the largest x
    assert up.trials == [2, 0, 3]


def test_front_and_projections_plot_the_chosen_objectives(results: StudyResults, tmp_path: Path) -> None:
    summary = {**results.summary, "objectives": ["accuracy", "e2e_ms", "energy_mj"]}
    chosen = results_from_trials(tmp_path, "chosen", synthetic_trials(120, 3, deadline_ms=40.0), summary)
    info = front_info(chosen)
    assert [a.metric for a in info.axes] == ["e2e_ms", "energy_mj", "accuracy"]
    assert info.limits["e2e_ms"].value == 40.0
    by_number = {t.number: t for t in chosen.trials}
    for g in info.groups:
        assert g.values["e2e_ms"] == [by_number[n].metrics["e2e_ms"] for n in g.trials]
    stairs = projection_info(chosen).payload  # the plane of the first horizontal axis: e2e_ms
    feasible = [t for t in chosen.complete if t.feasible]
    for cost, accuracy in zip(stairs.cost, stairs.accuracy, strict=True):
        assert not any(t.metrics["e2e_ms"] <= cost and t.metrics["accuracy"] > accuracy for t in feasible)
    assert "Pareto front: accuracy, e2e_ms, energy_mj" in build_report(chosen).html


def test_table_context_and_summary_carry_the_whole_path(results: StudyResults) -> None:
    table = table_info(results)
    cols = list(table.columns)
    by_number = {t.number: t for t in results.trials}
    for row in table.rows:
        record = by_number[int(row[0].sort)]
        assert row[cols.index("e2e ms")].sort == record.metrics["e2e_ms"]
        assert row[cols.index("wire B")].sort == record.metrics["wire_bytes"]
        assert row[cols.index("transfer ms")].sort == record.metrics["transfer_ms"]
    context = context_info(results)
    rules = dict(context.constraint_rows)
    assert rules["e2e_over_deadline"] == "e2e_ms <= 40 ms" and "payload_over_budget" in rules
    network = {p: (v, s) for p, v, s in context.network_rows}
    assert "network.uplink_kbps" in network and network["network.uplink_kbps"][1]  # every number has its source
    assert not any(p.startswith("network.") for p, _, _ in context.device_rows)
    best = results.summary["best"]
    line = build_report(results).html
    e2e = best["metrics"]["e2e_ms"]
    assert f"Best (highest val accuracy meeting every constraint): trial {best['trial']}" in line
    assert f"e2e {e2e:.2f} ms" in line


def test_a_study_from_before_named_metrics_still_renders(tmp_path: Path) -> None:
    results = synthetic_results(60, tmp_path / "old", seed=4, legacy=True)
    assert all(set(t.metrics) >= {"accuracy", "payload_bytes", "device_ms"} for t in results.complete)
    assert all(t.costs is None and "e2e_ms" not in t.metrics for t in results.complete)
    report = build_report(results)
    assert report.points["front-3d"] == 60 and report.points["breakdown"] == 0 and report.points["sweep"] == 0
    info = breakdown_info(results)
    assert not info.rows and sorted(info.missing) == sorted(results.pareto_trials) and "no stored latency" in info.note
    e2e = list(table_info(results).columns).index("e2e ms")
    assert all(row[e2e].text == "-" for row in table_info(results).rows)
    assert "Best (the older rule: highest test accuracy within the budget)" in report.html
    assert dict(context_info(results).constraint_rows)["limits (older study)"].startswith("payload <= 5 KB")


def test_the_context_shows_the_studys_link_when_the_search_replaced_it(tmp_path: Path) -> None:
    trials = synthetic_trials(10, 6)
    summary = {**summary_of(trials), "network": "nb-iot", "network_path": "profiles/networks/nb-iot.yaml"}
    results = results_from_trials(tmp_path, "nb", trials, summary)
    assert results.device is not None and results.device.name == "pi4"
    context = context_info(results)
    assert context.network_name == "nb-iot" and context.device_name == "pi4"
    uplink = dict((p, v) for p, v, _ in context.network_rows)["network.uplink_kbps"]
    assert sweep_info(results).link_kbps == float(uplink) == results.device.network.uplink_kbps.value
