"""``split-opt report reports/NAME``: (re)write the study's interactive HTML report."""

from __future__ import annotations

import argparse
from pathlib import Path

from optimizer.cli._common import add_format, emit_json
from optimizer.report import Report, write_report

__all__ = ["add_report_parser", "describe_report", "report_json"]

FIGURE_NAMES = {
    "front-3d": "3-D front",
    "projections": "projections",
    "breakdown": "latency breakdown",
    "sweep": "bandwidth sweep",
    "tradeoff": "triple trade-off",
    "compression": "compression per layer",
    "parallel": "parallel coordinates",
    "pareto-table": "Pareto table rows",
}


def add_report_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="(re)write the interactive HTML report of a study",
        description="Write reports/NAME/index.html: the Pareto front in 3-D and in two projections, the "
        "latency breakdown of the Pareto set (device, coding, transfer, round trip, server), the bandwidth sweep "
        "(the best configuration at each uplink rate, and the policy table), the "
        "triple trade-off and compression-per-layer figures, parallel coordinates, the Pareto table with "
        "the export command of each row, and the study's context. One self-contained file (Plotly "
        "inlined) that opens offline from file://. `split-opt search` writes it too.",
    )
    p.add_argument("report_dir", type=Path, metavar="reports/NAME", help="the folder `split-opt search` wrote")
    p.add_argument("--storage", default=None, help="the study's Optuna storage URL, if not reports/NAME/study.db")
    add_format(p)
    p.set_defaults(func=_report)


def report_json(report: Report) -> dict[str, object]:
    return {
        "path": str(report.path),
        "size_bytes": report.size_bytes,
        "figure_points": report.points,
        "messages": report.messages,
    }


def describe_report(report: Report) -> str:
    """One line for people: where the report is, how big, what it drew."""
    counts = ", ".join(f"{FIGURE_NAMES.get(k, k)} {v}" for k, v in report.points.items())
    return f"wrote {report.path} ({report.size_bytes / 1e6:.1f} MB; points drawn: {counts}); open it in a browser"


def _report(args: argparse.Namespace) -> int:
    report = write_report(args.report_dir, args.storage)
    if args.format == "json":
        emit_json(report_json(report))
        return 0
    print(describe_report(report))
    for message in report.messages:
        print(f"note: {message}")
    return 0
