"""Drawing the front, its projections and the parallel coordinates from their figure data.

Nothing here computes: each function turns one info object into a Plotly figure. Data arrays are
plain lists (not numpy), so the page's JSON stays readable and the browser test can count points.
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from optimizer.report._axes import Axis
from optimizer.report._front import FrontInfo, PointGroup, ProjectionInfo, Staircase
from optimizer.report._parallel import ParallelInfo

__all__ = ["K_COLORAXIS", "empty_figure", "draw_front", "draw_parallel", "draw_projections"]

# The colour scale runs from the input (k = 0) to the last split of the study's deepest model.
K_COLORAXIS = {"colorscale": "Viridis", "cmin": 0, "colorbar": {"title": {"text": "split k"}}}
_MARKERS = {  # group -> (3-D symbol, 2-D symbol, size, opacity)
    "Pareto set": ("diamond", "diamond", 7, 1.0),
    "feasible": ("circle", "circle", 3, 0.55),
    "infeasible": ("x", "x-thin-open", 3, 0.55),
}
_INFEASIBLE_COLOR = "#9a9a9a"


def empty_figure(message: str, height: int = 260) -> go.Figure:
    """A figure that says why it has nothing to show."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font={"size": 15})
    fig.update_layout(height=height, xaxis={"visible": False}, yaxis={"visible": False})
    return fig


def _marker(group: PointGroup, dims: int) -> dict:
    symbol3, symbol2, size, opacity = _MARKERS[group.name]
    marker: dict = {"symbol": symbol3 if dims == 3 else symbol2, "size": size if dims == 3 else size + 3}
    marker["opacity"] = opacity
    if group.name == "infeasible":
        marker["color"] = _INFEASIBLE_COLOR
    else:
        marker.update(color=group.k, coloraxis="coloraxis")
    if group.name == "Pareto set":
        marker["line"] = {"color": "black", "width": 1}
    return marker


def _scene_axis(axis: Axis) -> dict:
    out: dict = {"title": {"text": axis.label + (" (log)" if axis.log else "")}}
    if axis.log:
        out["type"] = "log"
    return out


def draw_front(info: FrontInfo) -> go.Figure:
    """3-D over the front's three metrics (by default payload KB (log) x device ms x val accuracy)."""
    x, y, z = info.axes
    fig = go.Figure()
    for group in info.groups:
        fig.add_trace(
            go.Scatter3d(
                x=group.values[x.metric],
                y=group.values[y.metric],
                z=group.values[z.metric],
                mode="markers",
                name=f"{group.name} ({len(group.trials)})",
                text=group.hover,
                hovertemplate="%{text}<extra></extra>",
                marker=_marker(group, 3),
            )
        )
    fig.update_layout(
        height=680,
        margin={"l": 0, "r": 0, "t": 30, "b": 0},
        coloraxis=K_COLORAXIS,
        legend={"x": 0, "y": 1},
        scene={"xaxis": _scene_axis(x), "yaxis": _scene_axis(y), "zaxis": _scene_axis(z)},
    )
    return fig


def _vertical(x: float, y: tuple[float, float], name: str) -> go.Scatter:
    return go.Scatter(
        x=[x, x], y=list(y), mode="lines", name=name, line={"color": "#d62728", "dash": "dash", "width": 2}
    )


def _stairs(stairs: Staircase, col: int, splits_only: bool) -> go.Scatter:
    color = "#ff7f0e" if splits_only else "black"
    return go.Scatter(
        x=stairs.cost,
        y=stairs.accuracy,
        mode="lines+markers",
        line={"shape": "hv", "color": color, "width": 1.5, "dash": "dot" if splits_only else "solid"},
        marker={"size": 5, "color": color},
        name=f"2-D front ({stairs.over})",
        legendgroup=f"stairs-{splits_only}",
        showlegend=col == 1,
        text=[f"trial {t}" for t in stairs.trials],
        hovertemplate="%{text}: %{y:.4g}, %{x:.3g}<extra>2-D front</extra>",
    )


def _y_span(info: FrontInfo) -> tuple[float, float]:
    vertical = info.axes[2].metric
    values = [v for g in info.groups for v in g.values[vertical] if v is not None]
    return (min(values), max(values)) if values else (0.0, 1.0)


def draw_projections(info: ProjectionInfo) -> go.Figure:
    """The vertical metric against each horizontal one, feasible and infeasible marked apart."""
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.04)
    x_axis, y_axis, vertical = info.front.axes
    planes = ((1, x_axis, info.payload, info.payload_splits), (2, y_axis, info.latency, info.latency_splits))
    span = _y_span(info.front)
    for col, axis, stairs, stairs_splits in planes:
        for group in info.front.groups:
            short = [h.split("<br>")[0] for h in group.hover]  # the configuration; x and y are the metrics
            fig.add_trace(
                go.Scatter(
                    x=group.values[axis.metric],
                    y=group.values[vertical.metric],
                    mode="markers",
                    name=f"{group.name} ({len(group.trials)})",
                    legendgroup=group.name,
                    showlegend=col == 1,
                    text=group.hover if group.name == "Pareto set" else short,
                    hovertemplate=f"%{{text}}<br>{vertical.label} %{{y:.4g}}<br>{axis.label} %{{x:.4g}}<extra></extra>",
                    marker=_marker(group, 2),
                ),
                row=1,
                col=col,
            )
        fig.add_trace(_stairs(stairs, col, False), row=1, col=col)
        fig.add_trace(_stairs(stairs_splits, col, True), row=1, col=col)
        limit = info.front.limits.get(axis.metric)
        if limit is not None:
            fig.add_trace(_vertical(limit.value, span, limit.label), row=1, col=col)
        fig.update_xaxes(title_text=axis.label + (" (log)" if axis.log else ""), row=1, col=col)
        if axis.log:
            fig.update_xaxes(type="log", row=1, col=col)
    fig.update_yaxes(title_text=vertical.label, row=1, col=1)
    fig.update_layout(height=520, coloraxis={**K_COLORAXIS, "colorbar": {"title": {"text": "split k"}, "x": 1.02}})
    fig.update_layout(legend={"orientation": "h", "y": -0.18}, margin={"t": 30})
    return fig


def draw_parallel(info: ParallelInfo) -> go.Figure:
    if not info.trials:
        return empty_figure("no completed trial to draw")
    dims = []
    for d in info.dimensions:
        dim: dict = {"label": d.label, "values": d.values}
        if d.tickvals is not None:
            dim.update(tickvals=d.tickvals, ticktext=d.ticktext)
        dims.append(dim)
    line = {"color": info.feasible, "colorscale": [[0, "#c8c8c8"], [1, "#1f77b4"]], "cmin": 0, "cmax": 1}
    fig = go.Figure(go.Parcoords(line=line, dimensions=dims))
    fig.update_layout(height=480, margin={"l": 60, "r": 60, "t": 60, "b": 30})
    return fig
