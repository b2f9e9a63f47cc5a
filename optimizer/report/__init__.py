"""The interactive report: pure functions that turn a study into figure data, functions that draw
the data as Plotly figures, and the writer of the self-contained reports/NAME/index.html."""

from __future__ import annotations

from optimizer.report._axes import AXES, Axis, Limit, axis_of, limits_of, plot_axes
from optimizer.report._bandwidth import PolicyRow, SweepChange, SweepInfo, sweep_info
from optimizer.report._breakdown import SEGMENTS, BreakdownInfo, BreakdownRow, breakdown_info
from optimizer.report._build import Report, build_report, policy_table, write_report
from optimizer.report._compression import TOLERANCE, CompressionInfo, best_model, compression_info, compression_infos
from optimizer.report._context import ContextInfo, context_info, status_messages
from optimizer.report._draw import draw_front, draw_parallel, draw_projections
from optimizer.report._draw_layers import draw_compression, draw_tradeoff
from optimizer.report._draw_path import draw_breakdown, draw_sweep, rate_text
from optimizer.report._front import (
    FrontInfo,
    PointGroup,
    ProjectionInfo,
    Staircase,
    front_info,
    projection_info,
    staircase,
)
from optimizer.report._html import figure_points
from optimizer.report._layers import SplitRow, models_of, split_rows, uncompressed_accuracy
from optimizer.report._load import load_results, results_from_trials
from optimizer.report._parallel import ParallelInfo, parallel_info
from optimizer.report._records import StudyResults, TrialRecord, describe, record_of
from optimizer.report._table import TableInfo, export_command, table_info
from optimizer.report._tradeoff import ModelSeries, TradeoffInfo, tradeoff_info

__all__ = [
    "AXES",
    "SEGMENTS",
    "TOLERANCE",
    "Axis",
    "BreakdownInfo",
    "BreakdownRow",
    "CompressionInfo",
    "ContextInfo",
    "FrontInfo",
    "Limit",
    "ModelSeries",
    "ParallelInfo",
    "PointGroup",
    "PolicyRow",
    "ProjectionInfo",
    "Report",
    "SplitRow",
    "Staircase",
    "StudyResults",
    "SweepChange",
    "SweepInfo",
    "TableInfo",
    "TradeoffInfo",
    "TrialRecord",
    "axis_of",
    "best_model",
    "breakdown_info",
    "build_report",
    "compression_info",
    "compression_infos",
    "context_info",
    "describe",
    "draw_breakdown",
    "draw_compression",
    "draw_front",
    "draw_parallel",
    "draw_projections",
    "draw_sweep",
    "draw_tradeoff",
    "export_command",
    "figure_points",
    "front_info",
    "limits_of",
    "load_results",
    "models_of",
    "parallel_info",
    "plot_axes",
    "policy_table",
    "projection_info",
    "rate_text",
    "record_of",
    "results_from_trials",
    "split_rows",
    "staircase",
    "status_messages",
    "sweep_info",
    "table_info",
    "tradeoff_info",
    "uncompressed_accuracy",
    "write_report",
]
