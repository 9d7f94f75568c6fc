"""The account projection tells trades, balance and equity the way a trader would count them."""

import itertools
from collections.abc import Iterable
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.events import (
    BUY,
    SELL,
    CandleClosed,
    EventBase,
    Fill,
    FundingPaid,
    SessionStarted,
    SubmitOrder,
)
from engine.instrument import BTCUSDT, MONEY_SCALE, Instrument
from projections.account import AccountView
from projections.metrics import max_drawdown, summarize

INSTR = Instrument(BTCUSDT)
MIN = 60_000


def started(balance_usdt: int = 10_000) -> SessionStarted:
    return SessionStarted(
        ts=0,
        session_id="s",
        mode="backtest",
        card_text="",
        card_hash="",
        venue="sim",
        instrument=BTCUSDT,
        version="test",
        initial_balance=balance_usdt * MONEY_SCALE,
        timeframe="1m",
    )


def candle(i: int, close: str) -> CandleClosed:
    t = INSTR.price_to_ticks(close)
    return CandleClosed(
        ts=(i + 1) * MIN,
        symbol="BTCUSDT",
        timeframe="1m",
        open_ms=i * MIN,
        close_ms=(i + 1) * MIN,
        open=t,
        high=t,
        low=t,
        close=t,
        volume=1000,
    )


def fill(n: int, side: str, qty: str, price: str, fee: str, ts: int = 0) -> Fill:
    return Fill(
        ts=ts,
        client_id=f"c{n}",
        venue_id=f"v{n}",
        exec_id=f"e{n}",
        symbol="BTCUSDT",
        side=side,
        price=INSTR.price_to_ticks(price),
        qty=INSTR.qty_to_lots(qty),
        fee=int(Decimal(fee) * MONEY_SCALE),
    )


def with_orders(events: Iterable[EventBase]) -> list[EventBase]:
    """The log as the engine writes it: each order's ``SubmitOrder`` before its first fill
    (the account view books only fills of orders the session placed)."""
    out: list[EventBase] = []
    placed: set[str] = set()
    for e in events:
        if isinstance(e, Fill) and e.client_id not in placed:
            placed.add(e.client_id)
            out.append(SubmitOrder(e.ts, e.client_id, e.symbol, e.side, "Market", e.qty))
        out.append(e)
    return out


def account(events: Iterable[EventBase]) -> AccountView:
    return AccountView().fold(with_orders(events))


def money(value: str) -> int:
    return int(Decimal(value) * MONEY_SCALE)


def test_a_long_round_trip_is_one_trade_with_pnl_net_of_fees() -> None:
    view = account(
        [
            started(),
            candle(0, "60000"),
            fill(1, BUY, "0.5", "60000.0", "16.5", ts=MIN),
            candle(1, "60500"),
            fill(2, SELL, "0.5", "61000.0", "16.775", ts=2 * MIN),
            candle(2, "61000"),
        ]
    )
    gross = (Decimal("61000.0") - Decimal("60000.0")) * Decimal("0.5")
    net = gross - Decimal("16.5") - Decimal("16.775")
    assert len(view.trades) == 1
    trade = view.trades[0]
    assert trade.side == "long"
    assert trade.pnl == money(str(net))
    assert trade.fees == money("33.275")
    assert view.balance == money("10000") + money(str(net))
    assert view.position.qty == 0
    # Marked at each close: flat, then +250 unrealized less the entry fee, then realized.
    assert list(view.curve_equity.array()) == [
        money("10000"),
        money("10000") - money("16.5") + money("250"),
        view.balance,
    ]


def test_scaling_in_and_out_stays_one_trade_until_flat() -> None:
    view = account(
        [
            started(),
            fill(1, BUY, "0.1", "100.0", "0"),
            fill(2, BUY, "0.1", "110.0", "0"),
            fill(3, SELL, "0.05", "120.0", "0"),
            fill(4, SELL, "0.15", "90.0", "0"),
        ]
    )
    assert len(view.trades) == 1
    trade = view.trades[0]
    assert trade.qty == INSTR.qty_to_lots("0.2")
    # Average entry 105, exits 0.05 @120 and 0.15 @90: (15*0.05) + (-15*0.15) = -1.5
    assert trade.pnl == money("-1.5")
    assert trade.entry_price == pytest.approx(INSTR.price_to_ticks("105"))


def test_a_flip_closes_one_trade_and_opens_the_next() -> None:
    view = account(
        [
            started(),
            fill(1, BUY, "1", "100.0", "1"),
            fill(2, SELL, "3", "90.0", "3"),
        ]
    )
    assert [t.side for t in view.trades] == ["long"]
    assert view.trades[0].pnl == money("-10") - money("1") - money("1")  # a third of fill 2's fee
    assert view.open_trade is not None and view.open_trade.side == "short"
    assert view.position.qty == -INSTR.qty_to_lots("2")


def test_a_repeated_execution_is_counted_once() -> None:
    f = fill(1, BUY, "1", "100.0", "1")
    view = account([started(), f, f, f])
    assert view.position.qty == INSTR.qty_to_lots("1")
    assert view.balance == money("10000") - money("1")


def test_funding_is_charged_to_the_balance_and_the_open_trade() -> None:
    funding = FundingPaid(ts=5, symbol="BTCUSDT", exec_id="f1", amount=money("2.5"))
    view = account(
        [started(), fill(1, BUY, "1", "100.0", "0"), funding, fill(2, SELL, "1", "100.0", "0")]
    )
    assert view.balance == money("10000") - money("2.5")
    assert view.trades[0].pnl == -money("2.5")
    assert view.funding_paid == money("2.5")


def test_max_drawdown_is_the_largest_fall_from_a_peak() -> None:
    assert max_drawdown(np.array([100, 120, 90, 130, 117])) == pytest.approx(0.25)
    assert max_drawdown(np.array([100, 101, 102])) == 0.0


def test_summary_counts_wins_exposure_and_buy_and_hold() -> None:
    events = [started(), candle(0, "100")]
    events += [fill(1, BUY, "1", "100.0", "0", ts=MIN), candle(1, "110")]
    events += [fill(2, SELL, "1", "110.0", "0", ts=2 * MIN), candle(2, "120")]
    summary = summarize(account(events))
    assert summary.trades == 1 and summary.win_rate == 1.0
    assert summary.exposure == pytest.approx(1 / 3)
    assert summary.buy_and_hold_return == pytest.approx(0.2)
    assert summary.total_return == pytest.approx(10 / 10_000)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([BUY, SELL]),
            st.integers(1, 5_000),
            st.integers(100_000, 900_000),
            st.integers(0, 10**7),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_money_is_conserved_across_any_fills(fills: list[tuple[str, int, int, int]]) -> None:
    """balance == initial + realized - fees, and closed trades' PnL adds up to it when flat."""
    view = account([started()])
    for n, (side, lots, ticks, fee) in enumerate(fills):
        for e in with_orders(
            [Fill(0, f"c{n}", f"v{n}", f"e{n}", "BTCUSDT", side, ticks, lots, fee)]
        ):
            view.apply(e)
    pos = view.position
    assert view.balance == view.initial_balance + pos.realized - pos.fees
    open_pnl = view.open_trade.pnl if view.open_trade else 0
    assert sum(t.pnl for t in view.trades) + open_pnl == pos.realized - pos.fees


def test_sharpe_and_sortino_follow_the_documented_daily_convention() -> None:
    """Daily closes (last point of each UTC day), simple returns, sqrt(365), rf = 0."""
    import math
    import statistics

    from projections.metrics import DAY_MS, sharpe_sortino

    day_closes = [100.0, 103.0, 101.0, 104.0, 102.0, 108.0]
    ts, eq = [], []
    for d, close in enumerate(day_closes):  # two points a day; only the day's last counts
        ts += [d * DAY_MS + 1_000, d * DAY_MS + 80_000_000]
        eq += [close * 0.5, close]
    rets = [b / a - 1 for a, b in itertools.pairwise(day_closes)]
    mean = statistics.fmean(rets)
    sharpe = mean / statistics.stdev(rets) * math.sqrt(365)
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in rets) / len(rets))
    got = sharpe_sortino(np.array(ts, dtype=np.int64), np.array(eq))
    assert got == pytest.approx((sharpe, mean / downside * math.sqrt(365)))
