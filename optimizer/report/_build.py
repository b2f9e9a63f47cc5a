"""From study results to the written index.html: figure data, figures, page, file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from optimizer.report._compression import TOLERANCE, compression_infos
from optimizer.report._context import context_info, status_messages
from optimizer.report._draw import draw_front, draw_parallel, draw_projections
from optimizer.report._draw_layers import draw_compression, draw_tradeoff
from optimizer.report._front import projection_info
from optimizer.report._html import FigureSection, figure_points, render_page
from optimizer.report._load import load_results
from optimizer.report._parallel import parallel_info
from optimizer.report._records import StudyResults
from optimizer.report._table import table_info
from optimizer.report._tradeoff import ACCURACY_MEANING, tradeoff_info

__all__ = ["Report", "build_report", "write_report"]


@dataclass(frozen=True)
class Report:
    html: str
    points: dict[str, int]  # figure id -> data points drawn (table: rows)
    messages: list[str] = field(default_factory=list)
    path: Path | None = None

    @property
    def size_bytes(self) -> int:
        return len(self.html.encode())


def _figures(results: StudyResults) -> list[FigureSection]:
    projections = projection_info(results)
    pareto = "diamonds: the Pareto set (non-dominated among the feasible trials, one per configuration)"
    return [
        FigureSection(
            "front-3d",
            "1. Pareto front: accuracy, payload, device latency",
            "Every completed trial: x = mean payload per inference (KB = 1000 B, log axis), y = predicted device "
            "latency of the head plus the codec's projection (ms, from the device profile), z = val accuracy. "
            f"Colour: split k; {pareto}; circles: other feasible trials; grey crosses: infeasible. Hover for the "
            "configuration, val and test accuracy with 95 % intervals, payload mean and p95, MACs; drag to rotate.",
            draw_front(projections.front),
        ),
        FigureSection(
            "projections",
            "2. Projections: accuracy vs payload, accuracy vs device latency",
            f"The same trials in two planes; {pareto}; grey crosses: infeasible. Black staircase: the trials that "
            "no other beats in that plane alone (over the feasible trials); the extremes often win it alone (the "
            "all-local split sends a 13-byte class id, k = 0 costs the device nothing), so the orange dotted "
            "staircase repeats it over the splits 1 <= k <= 19 only. Red dashed line: the payload "
            "budget (and the latency deadline, when the search had one).",
            draw_projections(projections),
        ),
        FigureSection(
            "tradeoff",
            "3. The triple trade-off (after Assine et al., Fig. 1)",
            "One series per model (alpha, input size), one point per split k = 0..19: x = MACs the device runs "
            "for the head, y = the float32 activation that would cross the network uncompressed (log axis); "
            f"{ACCURACY_MEANING}. Hover for each point's layer and the best trial the study found there.",
            draw_tradeoff(tradeoff_info(results)),
        ),
        FigureSection(
            "compression",
            "4. Compression per layer (after Assine et al., Fig. 2)",
            f"For one model (the menu switches; the model of the best configuration comes first): at each split "
            f"k, the smallest mean payload among the study's trials whose val accuracy is within {TOLERANCE:g} "
            "(1 point) of the model's uncompressed accuracy, the float16 activation for comparison, and the image "
            "codecs the study tried at k = 0 (filled: within 1 point). The star marks the sweet spot, the split "
            "with the smallest such payload. Only tried configurations appear.",
            draw_compression(compression_infos(results)),
        ),
        FigureSection(
            "parallel",
            "5. Parameters against objectives",
            "One line per completed trial (blue: feasible, grey: infeasible). Drag along an axis to filter; "
            "'n/a' is a parameter the trial's codec does not have; bits = 16 for float16.",
            draw_parallel(parallel_info(results)),
        ),
    ]


def _summary_line(results: StudyResults) -> str:
    done = results.complete
    best = results.summary.get("best")
    text = (
        f"{len(done)} completed trial{'' if len(done) == 1 else 's'} ({sum(t.feasible for t in done)} feasible), "
        f"{len(results.pareto_trials)} in the Pareto set"
    )
    if results.budget_bytes is not None:
        text += f", payload budget {results.budget_bytes / 1000:g} KB"
    if best:
        text += (
            f". Best within the budget: trial {best['trial']}, test accuracy {best['test_accuracy']:.4f}, "
            f"{best['payload_bytes_mean']:.0f} B, {best['device_latency_ms']:.2f} ms on the device."
        )
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
