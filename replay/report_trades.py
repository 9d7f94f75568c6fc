"""Every trade explained: the rows of trades.csv and of report.html's trade table.

One row per round trip of ``AccountView.trades``, plus the trade still open when the log
ends (closed at the last candle's close, reason ``end of data``): the block that opened
it, the reason that closed it (``projections.trade_story``), prices, size, PnL, fees,
funding, duration, and MAE/MFE in money and in percent of the entry price (the
convention is ``projections.trade_story.excursions``'s).
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any, Final

import msgspec
import numpy as np

from engine.instrument import MONEY_SCALE, Instrument
from projections.account import AccountView, Trade
from projections.trade_story import END_OF_DATA, excursions

#: Columns of trades.csv, in order (the report's table shows the same, by its labels).
COLUMNS: Final = (
    "n",
    "side",
    "entry_time",
    "entry_price",
    "exit_time",
    "exit_price",
    "qty",
    "pnl",
    "fees",
    "funding",
    "duration_min",
    "opened_by",
    "close_reason",
    "mae",
    "mfe",
    "mae_pct",
    "mfe_pct",
)


class TradeRow(msgspec.Struct, gc=False):
    """One explained trade; prices in ticks (fractional averages), money in 1e-8 units."""

    n: int
    side: str
    entry_ts: int
    entry_price: float
    exit_ts: int
    exit_price: float
    lots: int
    pnl: int
    fees: int
    funding: int
    opened_by: str
    close_reason: str
    mae: int = 0
    mfe: int = 0
    mae_pct: float = 0.0
    mfe_pct: float = 0.0
    open_at_end: bool = False


def _minutes(ms: list[int]) -> list[str]:
    """Each time as ``YYYY-MM-DD HH:MM`` (UTC, seconds dropped), all at once."""
    text = np.datetime_as_string(np.array(ms, dtype="datetime64[ms]"), unit="m")
    return [t.replace("T", " ") for t in text.tolist()]


def trade_rows(view: AccountView) -> list[TradeRow]:
    """The explained trades of ``view`` (closed ones, then the one open at the end)."""
    story = view.story
    trades: list[Trade] = list(view.trades)
    rows = [
        TradeRow(
            i + 1,
            t.side,
            t.entry_ts,
            t.entry_price,
            t.exit_ts,
            t.exit_price,
            t.qty,
            t.pnl,
            t.fees,
            t.funding,
            story.block_of(t.opened_by),
            story.close_reason(t.closed_by),
        )
        for i, t in enumerate(trades)
    ]
    open_trade = view.open_trade
    if open_trade is not None and open_trade._entry_lots and view.curve:
        entry = open_trade._entry_value / open_trade._entry_lots
        unrealized = view.equity - view.balance
        rows.append(
            TradeRow(
                len(rows) + 1,
                open_trade.side,
                open_trade.entry_ts,
                entry,
                view.last_close_ms,
                float(view.last_price),
                open_trade.qty,
                open_trade.pnl + unrealized,
                open_trade.fees,
                open_trade.funding,
                story.block_of(open_trade.opened_by),
                END_OF_DATA,
                open_at_end=True,
            )
        )
    _add_excursions(rows, view)
    return rows


def _add_excursions(rows: list[TradeRow], view: AccountView) -> None:
    if not rows or view.instrument is None:
        return
    unit = view.instrument.notional_unit
    mae, mfe = excursions(
        np.array([r.entry_ts for r in rows], np.int64),
        np.array([r.exit_ts for r in rows], np.int64),
        np.array([r.entry_price for r in rows]),
        np.array([r.exit_price for r in rows]),
        np.array([r.side == "long" for r in rows]),
        view.curve_ts.array(),
        view.curve_high.array(),
        view.curve_low.array(),
    )
    for r, a, f in zip(rows, mae.tolist(), mfe.tolist(), strict=True):
        r.mae = round(a * r.lots * unit)
        r.mfe = round(f * r.lots * unit)
        r.mae_pct = a / r.entry_price if r.entry_price else 0.0
        r.mfe_pct = f / r.entry_price if r.entry_price else 0.0


def csv_values(r: TradeRow, instr: Instrument) -> list[Any]:
    """One trades.csv line for ``r``, in ``COLUMNS`` order."""
    return csv_lines([r], instr)[0]


def csv_lines(rows: list[TradeRow], instr: Instrument) -> list[list[Any]]:
    """The trades.csv lines of ``rows``, in ``COLUMNS`` order (times converted in bulk,
    each trade size spelled once)."""
    decimals = instr.price_decimals + 2
    tick = float(instr.tick)
    entries = _minutes([r.entry_ts for r in rows])
    exits = _minutes([r.exit_ts for r in rows])
    sizes: dict[int, str] = {}  # lots -> qty text (through Decimal; trades repeat sizes)
    out: list[list[Any]] = []
    for r, entry, exit_ in zip(rows, entries, exits, strict=True):
        if r.lots not in sizes:
            sizes[r.lots] = instr.lots_to_qty(r.lots)
        out.append(
            [
                r.n,
                r.side,
                entry,
                f"{float(r.entry_price) * tick:.{decimals}f}",
                exit_,
                f"{float(r.exit_price) * tick:.{decimals}f}",
                sizes[r.lots],
                f"{r.pnl / MONEY_SCALE:.8f}",
                f"{r.fees / MONEY_SCALE:.8f}",
                f"{r.funding / MONEY_SCALE:.8f}",
                f"{(r.exit_ts - r.entry_ts) / 60_000:g}",
                r.opened_by,
                r.close_reason,
                f"{r.mae / MONEY_SCALE:.8f}",
                f"{r.mfe / MONEY_SCALE:.8f}",
                f"{r.mae_pct:.6f}",
                f"{r.mfe_pct:.6f}",
            ]
        )
    return out


_LABELS: Final = (
    "#",
    "side",
    "entry",
    "entry price",
    "exit",
    "exit price",
    "qty",
    "PnL",
    "fees",
    "funding",
    "minutes",
    "opened by",
    "closed by",
    "MAE",
    "MFE",
    "MAE %",
    "MFE %",
)


def trade_table(rows: list[TradeRow], lines: list[list[Any]], quote: str) -> Iterator[str]:
    """The sortable trade table of report.html, in pieces (one per trade): every trade, one
    ``<tr>`` each; a click on a header sorts by that column (numbers by value, via each
    cell's ``data-v``).

    ``lines`` are ``csv_lines(rows, ...)``. Only the text cells (side, block, reason) are
    escaped, once per distinct value: numbers and times hold no character HTML escapes."""
    head = "".join(
        f"<th onclick='sortTrades({i})'>{html.escape(c)}</th>" for i, c in enumerate(_LABELS)
    )
    escaped: dict[str, str] = {}

    def esc(text: str) -> str:
        if text not in escaped:
            escaped[text] = html.escape(text, quote=True)
        return escaped[text]

    yield (
        f"<h2>Trades</h2><p>{len(rows):,} trades; money in {html.escape(quote)}; "
        "click a column to sort.</p>"
        f"<table id='trades'><thead><tr>{head}</tr></thead><tbody>"
    )
    m = MONEY_SCALE
    for r, v in zip(rows, lines, strict=True):
        side, block, reason = esc(r.side), esc(r.opened_by), esc(r.close_reason)
        exit_text = v[4] + " (open)" if r.open_at_end else v[4]
        yield (
            f"<tr><td data-v='{r.n}'>{r.n}</td><td data-v='{side}'>{side}</td>"
            f"<td data-v='{r.entry_ts}'>{v[2]}</td><td data-v='{float(v[3])}'>{v[3]}</td>"
            f"<td data-v='{r.exit_ts}'>{exit_text}</td><td data-v='{float(v[5])}'>{v[5]}</td>"
            f"<td data-v='{r.lots}'>{v[6]}</td><td data-v='{r.pnl}'>{r.pnl / m:,.2f}</td>"
            f"<td data-v='{r.fees}'>{r.fees / m:,.2f}</td>"
            f"<td data-v='{r.funding}'>{r.funding / m:,.2f}</td>"
            f"<td data-v='{r.exit_ts - r.entry_ts}'>{v[10]}</td>"
            f"<td data-v='{block}'>{block}</td><td data-v='{reason}'>{reason}</td>"
            f"<td data-v='{r.mae}'>{r.mae / m:,.2f}</td><td data-v='{r.mfe}'>{r.mfe / m:,.2f}</td>"
            f"<td data-v='{r.mae_pct}'>{r.mae_pct:.2%}</td>"
            f"<td data-v='{r.mfe_pct}'>{r.mfe_pct:.2%}</td></tr>"
        )
    yield "</tbody></table>" + _SORT_JS


_SORT_JS: Final = """<script>
function sortTrades(col){
  const body=document.querySelector('#trades tbody');
  const rows=Array.from(body.rows);
  const dir=body.dataset.col==String(col)&&body.dataset.dir=='1'?-1:1;
  const key=r=>{const v=r.cells[col].dataset.v;const x=Number(v);return isNaN(x)?v:x;};
  rows.sort((a,b)=>{const x=key(a),y=key(b);return (x<y?-1:x>y?1:0)*dir;});
  body.dataset.col=String(col);body.dataset.dir=String(dir);
  rows.forEach(r=>body.appendChild(r));
}
</script>"""
