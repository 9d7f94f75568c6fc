"""The sweep report: one self-contained HTML file (plotly inlined once), like the run report.

Sections: the headline (best trial, DSR and PBO, each with a one-line reading), a
heatmap of the objective over two swept params (the best value over the others), the
one-parameter sensitivity (best and median objective at each value), the walk-forward
table and stitched out-of-sample curve, and the table of every trial.
"""

from __future__ import annotations

import html
import math
import statistics
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from replay.sweep import stats
from replay.sweep.runner import objective_value
from replay.sweep.view import SweepView

STYLE = (
    "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
    "th,td{padding:2px 10px;text-align:right;border-bottom:1px solid #ddd}"
    "td.p{text-align:left}</style>"
)


def _cell(x: Any) -> str:
    if isinstance(x, float):
        return "-" if math.isnan(x) else f"{x:.4g}"
    return html.escape(str(x))


def heatmap(view: SweepView, x: str, y: str) -> go.Figure:
    """The best objective at each (x, y) over every other param; blank where none ran."""
    s = view.started
    xs, ys = s.space[x], s.space[y]
    z: list[list[float | None]] = [[None] * len(xs) for _ in ys]
    for t in view.qualified:
        value = objective_value(s, t)
        i, j = ys.index(t.params[y]), xs.index(t.params[x])
        if value is not None and (z[i][j] is None or value > (z[i][j] or -math.inf)):
            z[i][j] = value
    fig = go.Figure(
        go.Heatmap(
            x=[str(v) for v in xs],
            y=[str(v) for v in ys],
            z=z,
            colorscale="RdYlGn",
            colorbar={"title": s.objective},
        )
    )
    fig.update_layout(
        title=f"{s.objective} over {x} × {y}", xaxis_title=x, yaxis_title=y, height=480
    )
    return fig


def sensitivity(view: SweepView, name: str) -> go.Figure:
    s = view.started
    best, median = [], []
    values = s.space[name]
    for v in values:
        got = [objective_value(s, t) for t in view.qualified if t.params[name] == v]
        vals = [g for g in got if g is not None]
        best.append(max(vals) if vals else None)
        median.append(statistics.median(vals) if vals else None)
    fig = go.Figure()
    fig.add_scatter(x=values, y=best, mode="lines+markers", name="best")
    fig.add_scatter(x=values, y=median, mode="lines+markers", name="median")
    fig.update_layout(title=f"sensitivity of {s.objective} to {name}", xaxis_title=name, height=320)
    return fig


def render(view: SweepView) -> str:
    s = view.started
    parts: list[str] = []
    swept = [n for n, v in s.space.items() if len(v) > 1]
    best = view.best
    head = [
        ("card", s.card_path),
        ("data", f"{s.data_path} (sha256 {s.data_hash[:12]}…)"),
        ("search", f"{s.search}, seed {s.seed}"),
        ("objective", s.objective),
        ("trials", f"{len(view.trials)} of {view.planned}"),
        (
            "best",
            "-"
            if best is None
            else f"trial {best.number}: " + " ".join(f"{k}={v}" for k, v in best.params.items()),
        ),
    ]
    parts.append(
        "<table id='summary'>"
        + "".join(
            f"<tr><th>{html.escape(k)}</th><td class='p'>{html.escape(v)}</td></tr>"
            for k, v in head
        )
        + "</table>"
    )
    parts.append(f"<p id='dsr'>{html.escape(stats.dsr_reading(view.dsr))}</p>")
    parts.append(f"<p id='pbo'>{html.escape(stats.pbo_reading(view.pbo))}</p>")
    figures: list[tuple[str, go.Figure]] = []
    if len(swept) >= 2 and view.qualified:
        figures.append(("heatmap", heatmap(view, swept[0], swept[1])))
    for name in swept if view.qualified else []:
        figures.append((f"sensitivity-{name}", sensitivity(view, name)))
    if view.oos_equity:
        fig = go.Figure(go.Scatter(y=view.oos_equity, mode="lines", name="out of sample"))
        fig.update_layout(title="stitched out-of-sample equity (from 1.0)", height=320)
        figures.append(("oos-equity", fig))
    first = True
    for div_id, fig in figures:
        chart = fig.to_html(full_html=False, include_plotlyjs=first)
        parts.append(f"<div id='{div_id}'>{chart}</div>")
        first = False
    if view.folds:
        rows = "".join(
            f"<tr><td>{f.fold}</td><td>{f.train[0]}..{f.train[1]}</td>"
            f"<td>{f.test[0] if f.test else '-'}..{f.test[1] if f.test else '-'}</td>"
            f"<td class='p'>{_cell(' '.join(f'{k}={v}' for k, v in f.params.items()))}</td>"
            f"<td>{_cell(f.in_sample)}</td><td>{_cell(f.out_of_sample)}</td>"
            f"<td>{'-' if f.oos_return is None else f'{f.oos_return:+.2%}'}</td></tr>"
            for f in view.folds
        )
        parts.append(
            "<h2>Walk-forward</h2><table id='walk-forward'><tr><th>fold</th><th>train rows</th>"
            "<th>test rows</th><th>params</th><th>in sample</th><th>out of sample</th>"
            f"<th>OOS return</th></tr>{rows}</table>"
        )
    metrics = ("trades", "total_return", "max_drawdown", "sharpe", "sortino", "profit_factor")
    header = "".join(f"<th>{m}</th>" for m in ("#", "fold", "params", *metrics))
    body = "".join(
        f"<tr><td>{t.number if not t.test else 'test'}</td><td>{t.fold}</td>"
        f"<td class='p'>{_cell(' '.join(f'{k}={v}' for k, v in t.params.items()))}</td>"
        + "".join(f"<td>{_cell(t.metrics.get(m, math.nan))}</td>" for m in metrics)
        + "</tr>"
        for t in view.trials
    )
    parts.append(f"<h2>Trials</h2><table id='trials'><tr>{header}</tr>{body}</table>")
    title = html.escape(f"replay sweep — {s.sweep_id}")
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>{STYLE}"
        f"</head><body><h1>{title}</h1>{''.join(parts)}</body></html>"
    )


def write(view: SweepView, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(view), encoding="utf-8")
    return path
