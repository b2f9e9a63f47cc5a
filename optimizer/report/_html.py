"""The page: one self-contained HTML document with Plotly's JavaScript inlined (works offline from
file://), the figures, the sortable Pareto table and the study's context. Every text that comes
from a study or a profile is escaped."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import NamedTuple

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from optimizer.report._assets import CSS, SORT_JS
from optimizer.report._context import ContextInfo
from optimizer.report._table import TableInfo

__all__ = ["FigureSection", "PlainTable", "figure_points", "render_page"]

_PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


class PlainTable(NamedTuple):
    """A small table shown under a figure (the bandwidth sweep's policy)."""

    id: str
    caption: str
    columns: tuple[str, ...]
    rows: Sequence[Sequence[str]]


class FigureSection(NamedTuple):
    id: str  # the div's id, also the key of the point counts
    title: str
    caption: str
    figure: go.Figure
    table: PlainTable | None = None


def figure_points(figure: go.Figure) -> int:
    """Data points over all traces (what the browser test counts back from the page)."""
    total = 0
    for trace in figure.data:
        if trace.type == "parcoords":
            total += len(trace.dimensions[0].values) if trace.dimensions else 0
        else:
            total += len(trace.x) if trace.x is not None else 0
    return total


def _figure_html(section: FigureSection) -> str:
    div = pio.to_html(section.figure, include_plotlyjs=False, full_html=False, div_id=section.id, config=_PLOTLY_CONFIG)
    return (
        f'<section id="section-{section.id}"><h2>{escape(section.title)}</h2>'
        f'<p class="caption">{escape(section.caption)}</p>{div}{_plain_html(section.table)}</section>'
    )


def _plain_html(table: PlainTable | None) -> str:
    if table is None:
        return ""
    head = "".join(f"<th>{escape(c)}</th>" for c in table.columns)
    return (
        f'<p class="caption">{escape(table.caption)}</p><div class="wide"><table id="{escape(table.id)}">'
        f"<thead><tr>{head}</tr></thead><tbody>{_rows(table.rows)}</tbody></table></div>"
    )


def _table_html(info: TableInfo) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in info.columns)
    rows = []
    for row in info.rows:
        trial = int(row[0].sort)
        cells = []
        for col, cell in zip(info.columns, row, strict=True):
            command = col == "deploy it"
            text = f"<code>{escape(cell.text)}</code>" if command else escape(cell.text)
            css = ' class="command"' if command else ""
            cells.append(f'<td{css} data-sort="{escape(str(cell.sort))}">{text}</td>')
        css = ' class="best"' if trial == info.best_trial else ""
        rows.append(f"<tr{css}>{''.join(cells)}</tr>")
    best = (
        f"Highlighted: trial {info.best_trial}, the best (highest val accuracy meeting every constraint). "
        if info.best_trial is not None
        else ""
    )
    empty = "" if rows else "<p class='message'>The Pareto set is empty: no trial completed.</p>"
    return (
        '<section id="section-pareto-table"><h2>8. The Pareto set</h2>'
        f'<p class="caption">{escape(best)}Click a column to sort. {escape(info.note)}.</p>{empty}'
        f'<div class="wide"><table id="pareto-table" class="sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


def _rows(rows: Sequence[Sequence[str]]) -> str:
    return "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)


def _profile_html(kind: str, name: str, description: str, rows: list[tuple[str, str, str]]) -> str:
    title = f"<h3>{escape(kind)}: {escape(name)}</h3>"
    if not rows:
        return title + "<p class='message'>The profile could not be read.</p>"
    body = "".join(
        f"<tr><td>{escape(p)}</td><td>{escape(v)}</td><td class='source'>{escape(s)}</td></tr>" for p, v, s in rows
    )
    return (
        f"{title}<p>{escape(description)}</p>"
        f"<table><thead><tr><th>parameter</th><th>value</th><th>source</th></tr></thead><tbody>{body}</tbody></table>"
    )


def _context_html(info: ContextInfo) -> str:
    constraints = (
        "<h3>Constraints (a feasible trial meets all of them)</h3>"
        f"<table id='constraints'><tbody>{_rows(info.constraint_rows)}</tbody></table>"
        if info.constraint_rows
        else ""
    )
    return (
        '<section id="section-context"><h2>9. Study context</h2>'
        f"<table><tbody>{_rows(info.facts)}</tbody></table>{constraints}"
        f"<h3>Search space (values the sampler could choose)</h3><table><tbody>{_rows(info.space_rows)}</tbody></table>"
        + _profile_html("Network profile", info.network_name, info.network_description, info.network_rows)
        + _profile_html("Device profile", info.device_name, info.device_description, info.device_rows)
        + "</section>"
    )


def render_page(
    title: str, summary: str, messages: list[str], figures: list[FigureSection], table: TableInfo, context: ContextInfo
) -> str:
    nav = " ".join(f'<a href="#section-{f.id}">{escape(f.title)}</a>' for f in figures)
    nav += ' <a href="#section-pareto-table">Pareto set</a> <a href="#section-context">Context</a>'
    notes = "".join(f'<div class="message">{escape(m)}</div>' for m in messages)
    body = "".join(_figure_html(f) for f in figures)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>'
        f'<h1>{escape(title)}</h1><p class="summary">{escape(summary)}</p><div id="messages">{notes}</div>'
        f"<nav>{nav}</nav>{body}{_table_html(table)}{_context_html(context)}"
        f"<script>{SORT_JS}</script></body></html>\n"
    )
