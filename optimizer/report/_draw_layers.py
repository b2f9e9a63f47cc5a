"""Drawing the two per-layer figures of Assine et al.: the triple trade-off and compression per
layer (with a menu to switch models; the best model is shown first)."""

from __future__ import annotations

import textwrap
from typing import Any

import plotly.graph_objects as go

from optimizer.report._compression import CompressionInfo
from optimizer.report._draw import empty_figure
from optimizer.report._tradeoff import TradeoffInfo

__all__ = ["draw_compression", "draw_tradeoff"]

_GREY = "#c8c8c8"


def _color_range(info: TradeoffInfo) -> dict[str, float]:
    """The accuracies' own range (Plotly widens a range of constant-colour traces far beyond it)."""
    values = [s.accuracy for s in info.series if s.accuracy is not None]
    if not values:
        return {}
    low, high = min(values), max(values)
    pad = 0.005 if high - low < 0.01 else 0.0
    return {"cmin": low - pad, "cmax": high + pad}


def draw_tradeoff(info: TradeoffInfo) -> go.Figure:
    """x = device MACs of the head, y = float32 activation KB (log), colour = accuracy."""
    if not info.series:
        return empty_figure("no model in the study")
    fig = go.Figure()
    for s in info.series:
        marker: dict[str, Any] = {"size": 7, "line": {"color": "#444", "width": 0.5}}
        if s.accuracy is None:
            marker["color"] = _GREY
        else:
            marker.update(color=[s.accuracy] * len(s.k), coloraxis="coloraxis")
        fig.add_trace(
            go.Scatter(
                x=s.macs_m,
                y=s.activation_kb,
                mode="lines+markers",
                name=s.label,
                text=s.hover,
                hovertemplate="%{text}<extra></extra>",
                marker=marker,
                line={"color": "rgba(110,110,110,0.45)", "width": 1},
            )
        )
    fig.update_layout(
        height=560,
        xaxis={"title": {"text": "device compute: MACs of the head (millions)"}},
        yaxis={"title": {"text": "uncompressed activation at k, KB float32 (log)"}, "type": "log"},
        coloraxis={"colorscale": "Plasma", "colorbar": {"title": {"text": "val accuracy"}}, **_color_range(info)},
        legend={"title": {"text": "model (one point per k):"}, "orientation": "h", "y": -0.18},
        margin={"t": 30},
    )
    return fig


def _traces(info: CompressionInfo, visible: bool) -> list[go.Scatter]:
    """Five traces per model: float16, smallest within tolerance, image codecs, learned bottlenecks,
    sweet spot."""
    image_text = [f"{p.label}: {p.accuracy:.4f}" for p in info.images]
    sweet = [info.sweet_spot] if info.sweet_spot else []
    return [
        go.Scatter(
            x=info.float16_k,
            y=info.float16_bytes,
            mode="lines+markers",
            name="float16 activation (uncompressed)",
            line={"dash": "dot", "color": "#7f7f7f"},
            marker={"size": 4},
            visible=visible,
            hovertemplate="k=%{x}: %{y:,.0f} B float16<extra></extra>",
        ),
        go.Scatter(
            x=[p.k for p in info.smallest],
            y=[p.payload_bytes for p in info.smallest],
            mode="lines+markers",
            name="smallest payload within 1 point",
            line={"color": "#1f77b4"},
            marker={"size": 8},
            text=[f"trial {p.trial}: {p.label}<br>val accuracy {p.accuracy:.4f}" for p in info.smallest],
            visible=visible,
            hovertemplate="%{text}<br>%{y:,.0f} B<extra></extra>",
        ),
        go.Scatter(
            x=[0] * len(info.images),
            y=[p.payload_bytes for p in info.images],
            mode="markers+text" if len(info.images) <= 4 else "markers",  # more labels would overlap
            name="image codecs at k=0 (filled: within 1 point)",
            text=[p.label.split(" ", 4)[-1] for p in info.images],
            textposition="middle right",
            customdata=image_text,
            marker={
                "size": 9,
                "symbol": ["square" if ok else "square-open" for ok in info.images_within],
                "color": "#ff7f0e",
            },
            visible=visible,
            hovertemplate="%{customdata}<br>%{y:,.0f} B<extra></extra>",
        ),
        go.Scatter(
            x=[p.k for p in info.bottlenecks],
            y=[p.payload_bytes for p in info.bottlenecks],
            mode="markers",
            name="learned bottleneck (filled: within 1 point)",
            text=[f"trial {p.trial}: {p.label}<br>val accuracy {p.accuracy:.4f}" for p in info.bottlenecks],
            marker={
                "size": 10,
                "symbol": ["diamond" if ok else "diamond-open" for ok in info.bottlenecks_within],
                "color": "#9467bd",
            },
            visible=visible,
            hovertemplate="%{text}<br>%{y:,.0f} B<extra></extra>",
        ),
        go.Scatter(
            x=[p.k for p in sweet],
            y=[p.payload_bytes for p in sweet],
            mode="markers",
            name="sweet spot",
            marker={"size": 18, "symbol": "star", "color": "#2ca02c", "line": {"color": "black", "width": 1}},
            visible=visible,
            hovertemplate="sweet spot k=%{x}: %{y:,.0f} B<extra></extra>",
        ),
    ]


def _title(info: CompressionInfo) -> str:
    ref = f"{info.reference_accuracy:.4f}" if info.reference_accuracy is not None else "unknown"
    message = "<br>".join(textwrap.wrap(info.message, 150))  # Plotly titles do not wrap by themselves
    return f"<b>{info.model}</b>: uncompressed val accuracy {ref} ({info.reference_source})<br>{message}"


def _widest_k(infos: list[CompressionInfo]) -> int:
    return max((k for info in infos for k in info.float16_k), default=0)


def draw_compression(infos: list[CompressionInfo]) -> go.Figure:
    if not infos:
        return empty_figure("no completed trial to draw")
    fig = go.Figure()
    for i, info in enumerate(infos):
        for trace in _traces(info, visible=i == 0):
            fig.add_trace(trace)
    per = len(fig.data) // len(infos)
    buttons = [
        {
            "label": info.model,
            "method": "update",
            "args": [{"visible": [j // per == i for j in range(len(fig.data))]}, {"title.text": _title(info)}],
        }
        for i, info in enumerate(infos)
    ]
    fig.update_layout(
        height=560,
        title={"text": _title(infos[0]), "font": {"size": 13}},
        xaxis={"title": {"text": "split k (0 = the input image)"}, "dtick": 1 if _widest_k(infos) <= 40 else None},
        yaxis={"title": {"text": "mean payload bytes (log)"}, "type": "log"},
        legend={"orientation": "h", "y": -0.18},
        margin={"t": 130},
    )
    if len(infos) > 1:
        fig.update_layout(updatemenus=[{"buttons": buttons, "x": 1.0, "y": 1.18, "xanchor": "right"}])
    return fig
