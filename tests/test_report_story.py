"""Every trade explained: which block opened it, what closed it, how far it went against and
for the trader, and a page that draws all of it (counted in headless Chromium)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.events import (
    BUY,
    SELL,
    CandleClosed,
    Fill,
    Intent,
    IntentEmitted,
    Liquidated,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    SessionStarted,
    SubmitOrder,
)
from engine.instrument import BTCUSDT, MONEY_SCALE, Instrument
from eventstore import EventStore
from projections.account import AccountView
from replay.cli import cli
from replay.report_trades import trade_rows
from replay.verify import read_session
from tests.browser import needs_chromium, rendered_dom

INSTR = Instrument(BTCUSDT)
MIN = 60_000
ROOT = Path(__file__).resolve().parents[1]


def started() -> SessionStarted:
    return SessionStarted(
        ts=0,
        session_id="s",
        mode="backtest",
        card_text="",
        card_hash="",
        venue="sim",
        instrument=BTCUSDT,
        version="test",
        initial_balance=10_000 * MONEY_SCALE,
        timeframe="1m",
    )


def px(price: str) -> int:
    return INSTR.price_to_ticks(price)


def candle(i: int, low: str, high: str, close: str) -> CandleClosed:
    return CandleClosed(
        ts=(i + 1) * MIN,
        symbol="BTCUSDT",
        timeframe="1m",
        open_ms=i * MIN,
        close_ms=(i + 1) * MIN,
        open=px(close),
        high=px(high),
        low=px(low),
        close=px(close),
        volume=1000,
    )


def submit(cid: str, side: str, purpose: str, ts: int, trigger: str = "0") -> SubmitOrder:
    return SubmitOrder(
        ts=ts,
        client_id=cid,
        symbol="BTCUSDT",
        side=side,
        order_type="Market",
        qty=INSTR.qty_to_lots("1"),
        trigger_price=px(trigger) if trigger != "0" else 0,
        purpose=purpose,
    )


def fill(cid: str, side: str, price: str, ts: int) -> Fill:
    return Fill(
        ts=ts,
        client_id=cid,
        venue_id="v" + cid,
        exec_id="e" + cid,
        symbol="BTCUSDT",
        side=side,
        price=px(price),
        qty=INSTR.qty_to_lots("1"),
        fee=0,
    )


def intent(block: str, action: str, ts: int) -> IntentEmitted:
    return IntentEmitted(ts=ts, intent=Intent(action=action, block=block))


def test_a_stopped_trade_names_its_block_its_stop_and_its_excursions() -> None:
    """Long 1 BTC at 100 by block "breakout"; the stop rests at 90, then is moved to 95;
    the market reaches 120 and 92 while open; the stop fills at 95."""
    view = AccountView().fold(
        [
            started(),
            candle(0, "100", "100", "100"),
            intent("breakout", "enter_long", MIN),
            submit("c1", BUY, "entry", MIN),
            OrderAccepted(ts=MIN, client_id="c1", venue_id="vc1"),
            fill("c1", BUY, "100", MIN),
            submit("c2", SELL, "stop", MIN, trigger="90"),
            candle(1, "98", "120", "110"),  # the entry bar: its range counts
            OrderAmended(ts=2 * MIN, client_id="c2", venue_id="vc2", trigger_price=px("95")),
            candle(2, "92", "111", "96"),
            fill("c2", SELL, "95", 3 * MIN),
            candle(3, "80", "97", "85"),  # after the exit: not the trade's
        ]
    )
    (row,) = trade_rows(view)
    assert (row.opened_by, row.close_reason) == ("breakout", "stop")
    unit = INSTR.notional_unit
    assert row.mfe == (px("120") - px("100")) * INSTR.qty_to_lots("1") * unit  # 20 USDT
    assert row.mae == (px("92") - px("100")) * INSTR.qty_to_lots("1") * unit  # -8 USDT
    assert row.mfe == 20 * MONEY_SCALE and row.mae == -8 * MONEY_SCALE
    assert row.mae_pct == pytest.approx(-0.08) and row.mfe_pct == pytest.approx(0.20)
    levels = [(r.kind, r.price, r.start_ts, r.end_ts) for r in view.story.resting]
    assert levels == [("stop", px("90"), MIN, 2 * MIN), ("stop", px("95"), 2 * MIN, 3 * MIN)]


def test_a_trailed_stop_a_target_a_liquidation_and_the_end_of_data() -> None:
    events = [
        started(),
        candle(0, "100", "100", "100"),
        intent("a", "enter_long", MIN),
        submit("c1", BUY, "entry", MIN),
        fill("c1", BUY, "100", MIN),
        submit("c2", SELL, "stop", MIN, trigger="90"),
        candle(1, "100", "100", "100"),
        intent("trail", "trail_stop", 2 * MIN),
        fill("c2", SELL, "99", 2 * MIN),  # 1: trailing stop
        candle(2, "100", "100", "100"),
        intent("b", "enter_short", 3 * MIN),
        submit("c3", SELL, "entry", 3 * MIN),
        fill("c3", SELL, "100", 3 * MIN),
        submit("c4", BUY, "take_profit", 3 * MIN, trigger="90"),
        candle(3, "100", "100", "100"),
        fill("c4", BUY, "90", 4 * MIN),  # 2: take-profit
        OrderCancelled(ts=4 * MIN, client_id="c9", venue_id="x"),  # unknown: ignored
        candle(4, "100", "100", "100"),
        intent("a", "enter_long", 5 * MIN),
        submit("c5", BUY, "entry", 5 * MIN),
        fill("c5", BUY, "100", 5 * MIN),
        candle(5, "100", "100", "100"),
        Liquidated(  # 3: liquidation
            ts=6 * MIN,
            symbol="BTCUSDT",
            exec_id="liq",
            side=SELL,
            price=px("50"),
            qty=INSTR.qty_to_lots("1"),
            fee=0,
        ),
        candle(6, "100", "100", "100"),
        intent("b", "enter_short", 7 * MIN),
        submit("c6", SELL, "entry", 7 * MIN),
        fill("c6", SELL, "100", 7 * MIN),
        candle(7, "100", "104", "103"),  # 4: still open at the end
    ]
    rows = trade_rows(AccountView().fold(events))
    assert [(r.opened_by, r.close_reason) for r in rows] == [
        ("a", "trailing stop"),
        ("b", "take-profit"),
        ("a", "liquidation"),
        ("b", "end of data"),
    ]
    last = rows[-1]
    assert last.open_at_end and last.exit_ts == 8 * MIN
    assert last.pnl == -3 * MONEY_SCALE  # marked at the last close, 103
    assert last.mae == -4 * MONEY_SCALE  # the high of 104 against a short from 100


@needs_chromium
def test_the_page_draws_every_fill_every_trade_and_every_month(tmp_path: Path) -> None:
    """A long-only card that adds to its trades, on 90 days of 5-minute bars (drawn grouped):
    Chromium's DOM has one marker per fill, one table row per trade and one heatmap
    cell per month, each counted independently of the report's code (the log's fills,
    trades.csv and summary.json)."""
    store = tmp_path / "runs"
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "run", str(ROOT / "ideacards" / "breakout_scaling.yaml"), "--store", str(store),
            "--session", "page", "--candles", str(90 * 1440), "-q",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    folder = store / "reports" / "page"
    with EventStore(store) as st:
        fills = sum(1 for _, e in read_session(st, "page") if isinstance(e, Fill | Liquidated))
    with (folder / "trades.csv").open() as fh:
        trades = list(csv.DictReader(fh))
    months = json.loads((folder / "summary.json").read_text())["monthly_returns"]
    assert fills > len(trades) * 2  # the card adds: markers are more than entries and exits
    assert len(months) >= 3
    dom = rendered_dom(folder / "report.html", tmp_path / "profile")
    assert dom.count('class="point"') == fills  # long only: no flip draws two markers
    table = dom[dom.index('id="trades"') : dom.index("</table>", dom.index('id="trades"'))]
    assert table.count("<tr") == len(trades) + 1  # the header row
    assert dom.count('class="heatmap-label"') == sum(1 for m in months if m["return"] is not None)
    assert "drawn as" in dom and "every trade marker is drawn" in dom
    assert 'class="trace boxes' in dom  # the candlesticks
