"""From study results to the written index.html: figure data, figures, page, file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optimizer.report._bandwidth import SweepInfo, sweep_info
from optimizer.report._breakdown import breakdown_info
from optimizer.report._compression import TOLERANCE, compression_infos
from optimizer.report._context import context_info, status_messages
from optimizer.report._draw import draw_front, draw_parallel, draw_projections
from optimizer.report._draw_layers import draw_compression, draw_tradeoff
from optimizer.report._draw_path import draw_breakdown, draw_sweep, rate_text
from optimizer.report._front import projection_info
from optimizer.report._html import FigureSection, PlainTable, figure_points, render_page
from optimizer.report._load import load_results
from optimizer.report._parallel import parallel_info
from optimizer.report._records import StudyResults
from optimizer.report._table import table_info
from optimizer.report._tradeoff import ACCURACY_MEANING, tradeoff_info

__all__ = ["Report", "build_report", "policy_table", "write_report"]


@dataclass(frozen=True)
class Report:
    html: str
    points: dict[str, int]  # figure id -> data points drawn (table: rows)
    messages: list[str] = field(default_factory=list)
    path: Path | None = None

    @property
    def size_bytes(self) -> int:
        return len(self.html.encode())


def _front_sections(results: StudyResults) -> list[FigureSection]:
    projections = projection_info(results)
    x, y, z = projections.front.axes
    note = f" {projections.front.note}" if projections.front.note else ""
    pareto = "diamonds: the Pareto set (non-dominated among the feasible trials, one per configuration)"
    return [
        FigureSection(
            "front-3d",
            f"1. Pareto front: {z.metric}, {x.metric}, {y.metric}",
            f"Every completed trial: x = {x.label}{' (log axis)' if x.log else ''}, y = {y.label}, z = {z.label} "
            f"(the study's objectives, by name).{note} Colour: split k; {pareto}; circles: other feasible trials; grey "
            "crosses: infeasible. Hover for the configuration, val and test accuracy with 95 % intervals, payload, "
            "bytes on the link, device + transfer + server = e2e ms, energy; drag to rotate.",
            draw_front(projections.front),
        ),
        FigureSection(
            "projections",
            f"2. Projections: {z.metric} vs {x.metric}, {z.metric} vs {y.metric}",
            f"The same trials in two planes; {pareto}; grey crosses: infeasible. Black staircase: the trials that "
            "no other beats in that plane alone (over the feasible trials); the extremes often win it alone (the "
            "all-local split sends a 13-byte class id, k = 0 runs no head on the device), so the orange dotted "
            "staircase repeats it over the splits 1 <= k <= 19 only. Red dashed lines: the study's limits on "
            "these axes (payload budget, deadline, frame time, energy cap).",
            draw_projections(projections),
        ),
    ]


def _path_sections(results: StudyResults) -> list[FigureSection]:
    breakdown = breakdown_info(results)
    sweep = sweep_info(results)
    note = f" {breakdown.note}." if breakdown.note else ""
    sweep_note = f" Note: {sweep.note}." if sweep.note else ""
    return [
        FigureSection(
            "breakdown",
            "3. Where the time goes: latency breakdown of the Pareto set",
            "One bar per Pareto entry, fastest first: predicted ms of the head on the device, the device-side codec "
            "(projection, quantization, entropy coding, image encoding, learned encoder), the request over the "
            "uplink and the answer over the downlink, the network round trip, and the server (request handling, "
            "decode, tail); the segments add up to e2e_ms. Red dashed line: the deadline, when the study had one."
            f"{note} Hover for every term.",
            draw_breakdown(breakdown),
        ),
        FigureSection(
            "sweep",
            "4. Bandwidth sweep: the best configuration at each uplink rate",
            "For uplinks from 10 kbps to 1 Gbps (6 rates per decade, log axis): e2e_ms (top) and device energy "
            "(bottom) of the configuration the study's rule picks there (highest val accuracy meeting every "
            "constraint; ties: lower e2e_ms), re-priced from each trial's stored terms without re-evaluating (only "
            "the uplink time changes). Marker colour: the configuration; red stars and dotted lines: the rates "
            "where the choice changes (it changes somewhere between that rate and the one before); grey bands: "
            "no configuration is feasible; red dashed line: the deadline on e2e_ms (if any); green dashed line: the "
            f"study's own link.{sweep_note}",
            draw_sweep(sweep),
            policy_table(sweep),
        ),
    ]


def _layer_sections(results: StudyResults) -> list[FigureSection]:
    return [
        FigureSection(
            "tradeoff",
            "5. The triple trade-off (after Assine et al., Fig. 1)",
            "One series per model (model spec, input size), one point per split the search offered it, from the "
            "input (k = 0) to the last activation: x = MACs the device runs "
            "for the head, y = the float32 activation that would cross the network uncompressed (log axis); "
            f"{ACCURACY_MEANING}. Hover for each point's layer and the best trial the study found there.",
            draw_tradeoff(tradeoff_info(results)),
        ),
        FigureSection(
            "compression",
            "6. Compression per layer (after Assine et al., Fig. 2)",
            f"For one model (the menu switches; the model of the best configuration comes first): at each split "
            f"k, the smallest mean payload among the study's trials whose val accuracy is within {TOLERANCE:g} "
            "(1 point) of the model's uncompressed accuracy, the float16 activation for comparison, and the image "
            "codecs the study tried at k = 0 (filled: within 1 point). The star marks the sweet spot, the split "
            "with the smallest such payload. Only tried configurations appear.",
            draw_compression(compression_infos(results)),
        ),
        FigureSection(
            "parallel",
            "7. Parameters against objectives",
            "One line per completed trial (blue: feasible, grey: infeasible), one axis per parameter and per "
            "objective of the study. Drag along an axis to filter; 'n/a' is a parameter the trial's codec does not "
            "have; bits = 16 for float16.",
            draw_parallel(parallel_info(results)),
        ),
    ]


def _figures(results: StudyResults) -> list[FigureSection]:
    return [*_front_sections(results), *_path_sections(results), *_layer_sections(results)]


def policy_table(info: SweepInfo) -> PlainTable:
    """The sweep as a rate -> configuration table (what a bandwidth-adaptive device follows)."""
    if info.policy_source:
        return _bundle_policy_table(info)
    rows = []
    for p in info.policy:
        span = (
            rate_text(p.low_kbps)
            if p.low_kbps == p.high_kbps
            else f"{rate_text(p.low_kbps)} - {rate_text(p.high_kbps)}"
        )
        e2e = f"{p.e2e_ms[0]:.4g} - {p.e2e_ms[1]:.4g}" if p.e2e_ms else "-"
        accuracy = f"{p.accuracy:.4f}" if p.accuracy is not None else "-"
        rows.append((span, str(p.trial) if p.trial is not None else "-", p.label, accuracy, e2e))
    caption = (
        "The policy: uplink rates sampled with the same choice (the boundary lies between the last rate of a row "
        "and the first of the next); e2e ms at the two ends of the range."
    )
    return PlainTable("sweep-policy", caption, ("uplink", "trial", "configuration", "val accuracy", "e2e ms"), rows)


def _bundle_policy_table(info: SweepInfo) -> PlainTable:
    """An exported adaptive bundle's policy: exact rate ranges -> configuration tag."""
    rows = []
    for p in info.policy:
        low = rate_text(p.low_kbps) if p.low_kbps else "0"
        span = f"{low} - {rate_text(p.high_kbps) if p.high_kbps < 1e12 else 'up'}"
        e2e = f"{p.e2e_ms[0]:.4g} - {p.e2e_ms[1]:.4g}" if p.e2e_ms else "misses the deadline"
        accuracy = f"{p.accuracy:.4f}" if p.accuracy is not None else "-"
        rows.append((span, str(p.tag), str(p.trial), p.label, accuracy, e2e))
    caption = (
        f"The policy of {info.policy_source}: the device runs configuration TAG while its uplink estimate is in the "
        "range (boundaries exact, by the study's rule at that deadline); e2e ms by the study's model at the two "
        "ends (the top one at the sweep's highest rate). Below the first boundary nothing meets the deadline and "
        "the device runs the configuration that needs the least rate."
    )
    head = ("uplink", "tag", "trial", "configuration", "val accuracy", "e2e ms")
    return PlainTable("sweep-policy", caption, head, rows)


def _best_text(best: dict[str, Any]) -> str:
    metrics = best.get("metrics") or {}
    test = f", test accuracy {best['test_accuracy']:.4f}" if best.get("test_accuracy") is not None else ""
    val, payload = best.get("val_accuracy", 0.0), best["payload_bytes_mean"]
    text = f"trial {best['trial']}, val accuracy {val:.4f}{test}, {payload:.0f} B"
    if "e2e_ms" in metrics:
        return text + (
            f", e2e {metrics['e2e_ms']:.2f} ms (device {metrics['device_ms']:.2f} + transfer "
            f"{metrics['transfer_ms']:.2f} + server {metrics['server_ms']:.2f})"
        )
    device = metrics.get("device_ms", best.get("device_latency_ms"))
    return text + (f", {device:.2f} ms on the device" if device is not None else "")


def _summary_line(results: StudyResults) -> str:
    done = results.complete
    best = results.summary.get("best")
    text = (
        f"{len(done)} completed trial{'' if len(done) == 1 else 's'} ({sum(t.feasible for t in done)} feasible), "
        f"{len(results.pareto_trials)} in the Pareto set"
    )
    if results.budget_bytes is not None:
        text += f", payload budget {results.budget_bytes / 1000:g} KB"
    if results.deadline_ms is not None:
        text += f", deadline {results.deadline_ms:g} ms"
    if best:
        rule = "highest val accuracy meeting every constraint"
        if not results.constraints:
            rule = "the older rule: highest test accuracy within the budget"
        text += f". Best ({rule}): {_best_text(best)}."
    elif results.summary and done:
        text += ". No configuration meets every constraint."
    return text


def build_report(results: StudyResults) -> Report:
    """The page for ``results`` (pure: nothing is read or written)."""
    figures = _figures(results)
    table = table_info(results)
    messages = status_messages(results)
    html = render_page(
        f"split-opt report: {results.study_name}",
        _summary_line(results),
        messages,
        figures,
        table,
        context_info(results),
    )
    points = {f.id: figure_points(f.figure) for f in figures}
    points["pareto-table"] = len(table.rows)
    return Report(html, points, messages)


def write_report(report_dir: Path, storage: str | None = None) -> Report:
    """Read the study in ``report_dir`` and write ``report_dir/index.html`` (atomically)."""
    report = build_report(load_results(report_dir, storage))
    path = report_dir / "index.html"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(report.html, encoding="utf-8")
    tmp.replace(path)
    return Report(report.html, report.points, report.messages, path)
