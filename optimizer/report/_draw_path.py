"""Drawing the two figures of the whole path: the latency breakdown of the Pareto set (stacked
horizontal bars) and the bandwidth sweep (e2e_ms and energy of the best configuration per uplink
rate, the changes of choice marked). Nothing here computes; see _breakdown and _bandwidth."""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from optimizer.report._bandwidth import SweepInfo
from optimizer.report._breakdown import SEGMENTS, BreakdownInfo
from optimizer.report._draw import empty_figure

__all__ = ["draw_breakdown", "draw_sweep", "rate_text"]

_SEGMENT_COLORS = dict(zip(SEGMENTS, ("#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c"), strict=True))
_RED = "#d62728"


def rate_text(kbps: float) -> str:
    """10 kbps, 1.47 Mbps, 1 Gbps."""
    if kbps >= 1e6:
        return f"{kbps / 1e6:.3g} Gbps"
    return f"{kbps / 1e3:.3g} Mbps" if kbps >= 1e3 else f"{kbps:.3g} kbps"


def draw_breakdown(info: BreakdownInfo) -> go.Figure:
    """One stacked bar per Pareto entry, fastest at the top, with the deadline when there is one."""
    if not info.rows:
        return empty_figure(info.note or "no Pareto entry to break down")
    labels = [r.label + (" (best)" if r.trial == info.best_trial else "") for r in info.rows]
    fig = go.Figure()
    for name in SEGMENTS:
        fig.add_trace(
            go.Bar(
                x=[r.segments[name] for r in info.rows],
                y=labels,
                orientation="h",
                name=name,
                marker={"color": _SEGMENT_COLORS[name]},
                customdata=[[r.e2e_ms, r.detail] for r in info.rows],
                hovertemplate=f"%{{y}}<br>{name} %{{x:.3g}} ms of e2e %{{customdata[0]:.4g}} ms"
                "<br>%{customdata[1]}<extra></extra>",
            )
        )
    if info.deadline_ms is not None:
        fig.add_vline(
            x=info.deadline_ms,
            line={"color": _RED, "dash": "dash", "width": 2},
            annotation_text=f"deadline {info.deadline_ms:g} ms",
            annotation_position="top",
        )
    fig.update_layout(
        barmode="stack",
        height=160 + 26 * len(info.rows),
        margin={"t": 40, "l": 10},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0, "traceorder": "normal"},
        xaxis={"title": {"text": "predicted ms per inference (device, link, server)"}},
        yaxis={"autorange": "reversed", "automargin": True},
    )
    return fig


def _colors(info: SweepInfo) -> list[str]:
    chosen = list(dict.fromkeys(t for t in info.trials if t is not None))
    palette = qualitative.Dark24
    return [palette[chosen.index(t) % len(palette)] if t is not None else "#9a9a9a" for t in info.trials]


def _curve(info: SweepInfo, values: list[float | None], name: str, unit: str) -> go.Scatter:
    return go.Scatter(
        x=info.rates_kbps,
        y=values,
        mode="lines+markers",
        name=name,
        line={"color": "#555", "width": 1.5},
        marker={"size": 8, "color": _colors(info)},
        text=[
            f"trial {t}: {label}" if t is not None else label for t, label in zip(info.trials, info.labels, strict=True)
        ],
        hovertemplate=f"uplink %{{x:.4g}} kbps<br>%{{text}}<br>{name} %{{y:.4g}} {unit}<extra></extra>",
    )


def _changes(info: SweepInfo) -> go.Scatter:
    at = {rate: e2e for rate, e2e in zip(info.rates_kbps, info.e2e_ms, strict=True)}
    return go.Scatter(
        x=[c.rate_kbps for c in info.changes],
        y=[at[c.rate_kbps] for c in info.changes],
        mode="markers",
        name="the choice changes",
        marker={"symbol": "star", "size": 15, "color": _RED, "line": {"color": "black", "width": 1}},
        text=[
            f"from {rate_text(c.rate_kbps)}: "
            + (f"trial {c.trial} ({c.label})" if c.trial is not None else c.label)
            + (f", was trial {c.previous}" if c.previous is not None else "")
            for c in info.changes
        ],
        hovertemplate="%{text}<extra></extra>",
    )


def _marks(fig: go.Figure, info: SweepInfo) -> None:
    """Shapes (data coordinates) and annotations (log10 of the value on a log axis, as Plotly wants)."""
    for change in info.changes:
        fig.add_vline(x=change.rate_kbps, line={"color": _RED, "dash": "dot", "width": 1})
    for low, high in info.infeasible:
        fig.add_vrect(x0=low, x1=high, fillcolor="#bbbbbb", opacity=0.35, line_width=0)
        middle = (math.log10(low) + math.log10(high)) / 2
        fig.add_annotation(x=middle, xref="x", y=0.98, yref="paper", showarrow=False, text="nothing feasible")
    if info.link_kbps is not None:
        fig.add_vline(x=info.link_kbps, line={"color": "#2ca02c", "dash": "dash", "width": 2})
        fig.add_annotation(
            x=math.log10(info.link_kbps),
            xref="x",
            y=1.0,
            yref="paper",
            yanchor="bottom",
            showarrow=False,
            text=f"this study's link: {info.link_name} {rate_text(info.link_kbps)}",
        )
    if info.deadline_ms is not None:
        fig.add_hline(y=info.deadline_ms, line={"color": _RED, "dash": "dash", "width": 2}, row=1, col=1)


def draw_sweep(info: SweepInfo) -> go.Figure:
    """e2e_ms (top, log) and energy_mj (bottom) of the best feasible configuration against the uplink (log)."""
    if not info.rates_kbps:
        return empty_figure(info.note)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.62, 0.38])
    fig.add_trace(_curve(info, info.e2e_ms, "e2e_ms", "ms"), row=1, col=1)
    fig.add_trace(_curve(info, info.energy_mj, "energy_mj", "mJ"), row=2, col=1)
    fig.add_trace(_changes(info), row=1, col=1)
    _marks(fig, info)
    fig.update_xaxes(type="log", row=1, col=1)
    fig.update_xaxes(type="log", title_text="uplink kbps (log)", row=2, col=1)
    fig.update_yaxes(type="log", title_text="e2e ms of the best (log)", row=1, col=1)
    fig.update_yaxes(title_text="device energy mJ", row=2, col=1)
    fig.update_layout(height=620, margin={"t": 50}, legend={"orientation": "h", "y": -0.12})
    return fig
