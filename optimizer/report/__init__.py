"""The interactive report: pure functions that turn a study into figure data, functions that draw
the data as Plotly figures, and the writer of the self-contained reports/NAME/index.html."""

from __future__ import annotations

from optimizer.report._build import Report, build_report, write_report
from optimizer.report._compression import TOLERANCE, CompressionInfo, best_model, compression_info, compression_infos
from optimizer.report._context import ContextInfo, context_info, status_messages
from optimizer.report._draw import draw_front, draw_parallel, draw_projections
from optimizer.report._draw_layers import draw_compression, draw_tradeoff
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
    "TOLERANCE",
    "CompressionInfo",
    "ContextInfo",
    "FrontInfo",
    "ModelSeries",
    "ParallelInfo",
    "PointGroup",
    "ProjectionInfo",
    "Report",
    "SplitRow",
    "Staircase",
    "StudyResults",
    "TableInfo",
    "TradeoffInfo",
    "TrialRecord",
    "best_model",
    "build_report",
    "compression_info",
    "compression_infos",
    "context_info",
    "describe",
    "draw_compression",
    "draw_front",
    "draw_parallel",
    "draw_projections",
    "draw_tradeoff",
    "export_command",
    "figure_points",
    "front_info",
    "load_results",
    "models_of",
    "parallel_info",
    "projection_info",
    "record_of",
    "results_from_trials",
    "split_rows",
    "staircase",
    "status_messages",
    "table_info",
    "tradeoff_info",
    "uncompressed_accuracy",
    "write_report",
]
