"""Report folders: summary.json, trades.csv, equity.csv and a self-contained report.html.

A report is a projection of a session's log, never a by-product of a run: the same
function renders a finished backtest, a live session or an interrupted one.
Charts are drawn by plotly.js, inlined so the HTML opens offline (``replay.report_plotly``
writes the figures; ``replay.report_chart`` says how long runs are drawn, and the page
says it too); the trade
table and trades.csv hold every trade (``replay.report_trades``); the CSV files keep
every point.
"""

from __future__ import annotations

import csv
import html
import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from engine.instrument import Instrument
from projections.account import AccountView
from projections.metrics import Summary
from projections.refusals import RefusalSummary
from replay.report_chart import figure
from replay.report_plotly import RD_YL_GN, div, div_parts, template
from replay.report_trades import COLUMNS, TradeRow, csv_lines, trade_rows, trade_table


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def summary_dict(summary: Summary, extra: dict[str, Any]) -> dict[str, Any]:
    """The summary as JSON-safe builtins (infinities become null)."""
    out: dict[str, Any] = dict(extra)
    for key, value in msgspec.structs.asdict(summary).items():
        if isinstance(value, RefusalSummary):
            value = value.as_dict()
        finite = not (isinstance(value, float) and not math.isfinite(value))
        out[key] = msgspec.to_builtins(value) if finite else None  # monthly_returns: dicts
    out["start"] = iso(summary.start_ms) if summary.candles else None
    out["end"] = iso(summary.end_ms) if summary.candles else None
    return out


def refusal_rows(r: RefusalSummary, top: int = 5) -> list[tuple[str, str]]:
    """The refusal lines of the summary table and report.html: totals, then up to ``top``
    reasons of each kind (summary.json has them all)."""
    rows = [("intents", f"{r.intents:,} ({r.refused:,} refused, {r.refused_fraction:.1%})")]
    for label, counts in (
        ("risk rejections", r.risk),
        ("venue rejections", r.venue),
        ("failed protections", r.failed_protections),
    ):
        rows.append((label, f"{sum(counts.values()):,}"))
        for i, (reason, n) in enumerate(counts.items()):
            if i == top:
                rows.append(("  …", f"{len(counts) - top} more reasons in summary.json"))
                break
            rows.append((f"  {reason}", f"{n:,}"))
    rows.append(("liquidations", f"{r.liquidations:,}"))
    if r.never_fired:
        rows.append(("blocks never fired", ", ".join(r.never_fired)))
    return rows


def refusal_warning(r: RefusalSummary) -> str | None:
    """The warning line when more than 5 % of the intents were refused, else None."""
    if not r.warn:
        return None
    return (
        f"warning: {r.refused:,} of {r.intents:,} intents ({r.refused_fraction:.1%}) were "
        f"refused ({r.risk_total:,} risk rejections, {r.venue_total:,} venue rejections): "
        "this backtest did not trade the strategy as written"
    )


def write_report(
    folder: Path,
    view: AccountView,
    summary: Summary,
    extra: dict[str, Any],
    plan: Callable[[], object] | None = None,
) -> dict[str, Path]:
    """Write the four report files into ``folder``; returns their paths by name.

    ``plan`` builds a fresh compiled card whose features the chart draws (None: no
    features, e.g. a Python strategy that does not load here)."""
    folder.mkdir(parents=True, exist_ok=True)
    assert view.instrument is not None, "a report needs a SessionStarted event"
    instr = view.instrument
    paths = {
        "summary": folder / "summary.json",
        "trades": folder / "trades.csv",
        "equity": folder / "equity.csv",
        "html": folder / "report.html",
    }
    data = summary_dict(summary, extra)
    paths["summary"].write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    rows = trade_rows(view)
    lines = csv_lines(rows, instr)
    _write_trades(paths["trades"], lines)
    _write_equity(paths["equity"], view, instr)
    with paths["html"].open("w", encoding="utf-8") as fh:
        for part in _page(view, data, instr, summary.refusals, rows, lines, plan):
            fh.write(part)
    return paths


def _write_trades(path: Path, lines: list[list[Any]]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        w.writerows(lines)


EQUITY_ROWS = 65_536  # equity.csv rows formatted at a time


def _int64s(values: np.ndarray) -> pa.Array:
    """An int64 arrow column over ``values``' memory (``pa.array`` of numpy would import
    pandas, 0.2 s of CPU a report does not need)."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def _decimals(units: np.ndarray, scale: int) -> pa.Array:
    """Integers counting 10**-scale units as an exact decimal column (no float, no Decimal):
    each value becomes the 128-bit little-endian unscaled integer arrow stores."""
    units = np.ascontiguousarray(units, dtype=np.int64)
    wide = np.empty((len(units), 2), dtype=np.int64)
    wide[:, 0] = units
    wide[:, 1] = np.where(units < 0, -1, 0)  # sign extension of the high word
    return pa.Array.from_buffers(pa.decimal128(38, scale), len(units), [None, pa.py_buffer(wide)])


def _write_equity(path: Path, view: AccountView, instr: Instrument) -> None:
    """One row per candle close, exact, written by arrow's CSV writer (a million rows in
    well under a second), ``EQUITY_ROWS`` at a time so the text columns stay small."""
    pd, qd = instr.price_decimals, instr.qty_decimals
    tick_units = int(instr.tick.scaleb(pd))  # a tick in 10**-pd units (exact for decimal grids)
    lot_units = int(instr.step.scaleb(qd))
    ts, equity = view.curve_ts.array(), view.curve_equity.array()
    close, qty = view.curve_close.array(), view.curve_qty.array()
    options = pa_csv.WriteOptions(include_header=False)
    with path.open("wb") as fh:
        fh.write(b"time_ms,equity,close,position\n")
        for lo in range(0, len(ts), EQUITY_ROWS):
            part = slice(lo, lo + EQUITY_ROWS)
            table = pa.table(
                {
                    "time_ms": _int64s(ts[part]),
                    "equity": _decimals(equity[part], 8),
                    "close": _decimals(close[part] * tick_units, pd),
                    "position": _decimals(qty[part] * lot_units, qd),
                }
            )
            pa_csv.write_csv(table, fh, options)


def _refusals_html(r: RefusalSummary) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in refusal_rows(r)
    )
    warning = refusal_warning(r)
    note = f"<p id='refusal-warning'><strong>{html.escape(warning)}</strong></p>" if warning else ""
    return f"<h2>Refused</h2>{note}<table id='refusals'>{rows}</table>"


def _page(
    view: AccountView,
    data: dict[str, Any],
    instr: Instrument,
    refusals: RefusalSummary,
    trades: list[TradeRow],
    lines: list[list[Any]],
    plan: Callable[[], object] | None,
) -> Iterator[str]:
    """report.html in pieces, written one after the other: the trade table alone is tens
    of MB at a million candles, and one joined page would hold it twice more."""
    fig, note = figure(view, instr, trades, plan)
    rows = "".join(
        f"<tr><th>{key.replace('_', ' ')}</th><td>{html.escape(_fmt(data.get(key), key))}</td></tr>"
        for key in SUMMARY_ORDER
    )
    months = "".join(
        f"<tr><th>{m['month']}</th><td>{m['return']:+.2%}</td></tr>"
        for m in data.get("monthly_returns") or []
    )
    heatmap = _monthly_heatmap(data.get("monthly_returns") or [])
    title = html.escape(f"replay report — {data.get('session_id', '')}")
    quote = instr.spec.quote_coin or "USDT"
    yield (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{title}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "th,td{padding:2px 12px;text-align:left;border-bottom:1px solid #ddd}"
        "#trades th{cursor:pointer}</style>"
        f"</head><body><h1>{title}</h1><table id='summary'>{rows}</table>"
        f"{_refusals_html(refusals)}"
        f"<p id='chart-note'>{html.escape(note)}</p>"
        f"<div id='charts'>"
    )
    yield from div_parts(fig, include_plotlyjs=True)
    del fig
    yield "</div>"
    yield from trade_table(trades, lines, quote)
    yield (
        f"<h2>Monthly returns</h2><div id='monthly-heatmap'>{heatmap}</div>"
        f"<table id='monthly'>{months}</table>"
        "</body></html>"
    )


def _monthly_heatmap(months: list[dict[str, Any]]) -> str:
    """Years down, calendar months across, each cell the month's return in percent."""
    if not months:
        return ""
    years = sorted({int(m["month"][:4]) for m in months})
    z: list[list[float | None]] = [[None] * 12 for _ in years]
    for m in months:
        z[years.index(int(m["month"][:4]))][int(m["month"][5:7]) - 1] = m["return"] * 100
    text = [[f"{v:+.2f}%" if v is not None else "" for v in row] for row in z]
    colors = [[i / (len(RD_YL_GN) - 1), c] for i, c in enumerate(RD_YL_GN)]
    heatmap = {  # keys in plotly's order (see replay.report_chart)
        "colorbar": {"title": {"text": "%"}},
        "colorscale": colors,
        "text": text,
        "texttemplate": "%{text}",
        "x": [datetime(2000, k, 1).strftime("%b") for k in range(1, 13)],
        "y": [str(y) for y in years],
        "z": z,
        "zmid": 0,
        "type": "heatmap",
    }
    layout = {
        "template": template(),
        "yaxis": {"type": "category"},
        "height": 120 + 40 * len(years),
    }
    return div({"data": [heatmap], "layout": layout}, include_plotlyjs=False)


SUMMARY_ORDER = (
    "session_id",
    "card",
    "params",
    "data",
    "start",
    "end",
    "candles",
    "trades",
    "initial_balance",
    "final_equity",
    "total_return",
    "cagr",
    "max_drawdown",
    "sharpe",
    "sortino",
    "win_rate",
    "profit_factor",
    "exposure",
    "fees_paid",
    "funding_paid",
    "buy_and_hold_return",
    "calmar",
    "max_drawdown_duration_ms",
    "avg_trade",
    "median_trade",
    "best_trade",
    "worst_trade",
    "expectancy",
    "sqn",
    "long_trades",
    "long_win_rate",
    "long_pnl",
    "short_trades",
    "short_win_rate",
    "short_pnl",
    "max_consecutive_wins",
    "max_consecutive_losses",
    "fingerprint",
)


PERCENT = frozenset(
    {
        "total_return",
        "cagr",
        "max_drawdown",
        "win_rate",
        "exposure",
        "buy_and_hold_return",
        "expectancy",
        "long_win_rate",
        "short_win_rate",
    }
)
MONEY = frozenset(
    {
        "initial_balance",
        "final_equity",
        "fees_paid",
        "funding_paid",
        "avg_trade",
        "median_trade",
        "best_trade",
        "worst_trade",
        "long_pnl",
        "short_pnl",
    }
)


def _fmt(value: Any, key: str = "") -> str:
    if value is None or value == {}:
        return "—"
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items())
    if key == "max_drawdown_duration_ms":
        return duration_text(value)
    if isinstance(value, float) and key in PERCENT:
        return (
            f"{value:+.2%}"
            if key in ("total_return", "cagr", "buy_and_hold_return", "expectancy")
            else f"{value:.2%}"
        )
    if isinstance(value, float) and key in MONEY:
        return f"{value:,.2f} USDT"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def duration_text(ms: int) -> str:
    """A duration in days, hours and minutes: ``3d 4h 05m``."""
    minutes = int(ms) // 60_000
    days, rem = divmod(minutes, 1440)
    return f"{days}d {rem // 60}h {rem % 60:02d}m"
