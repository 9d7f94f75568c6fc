"""An emulated session fills exactly like a backtest of the same candles.

The same orders are sent to the emulator through pybit and to a ``SimVenue`` driven directly
(as the backtest runner drives it), at the same candle boundaries; the executions must agree
one for one: order, price, quantity, fee, maker flag.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.sim.config import SimConfig
from adapters.sim.venue import SimVenue
from engine.events import CandleClosed, Fill, SubmitOrder
from engine.instrument import BTCUSDT, Instrument, money_from_str
from tests.test_emulator_rest import client
from tools.bybit_emulator import EmulatorConfig, EmulatorHandle

INST = Instrument(BTCUSDT)
HISTORY = 50

#: One order: (bars to play first, side, type, qty lots, price offset in ticks from the last
#: close (limit/trigger), trigger direction or 0, reduce only).
Order = tuple[int, str, str, int, int, int, bool]


def backtest_fills(candles: Sequence[CandleClosed], orders: list[Order]) -> list[tuple[Any, ...]]:
    venue = SimVenue(INST, SimConfig(), EmulatorConfig().balance, id_prefix="bt")
    for c in candles[:HISTORY]:
        venue.on_candle(c)
    cursor = HISTORY
    for i, (wait, side, kind, qty, offset, direction, reduce_only) in enumerate(orders):
        for c in candles[cursor : cursor + wait]:
            venue.on_candle(c)
        cursor += wait
        last = candles[cursor - 1]
        price, trigger = _prices(last.close, kind, offset, direction)
        tp, sl = _bracket(last.close, kind, side, offset)
        venue.on_command(
            SubmitOrder(
                ts=last.close_ms,
                client_id=f"p-{i}",
                symbol="BTCUSDT",
                side=side,
                order_type="Limit" if price else "Market",
                qty=qty,
                price=price,
                trigger_price=trigger,
                trigger_direction=direction,
                reduce_only=reduce_only and kind != "Bracket",
                take_profit=tp,
                stop_loss=sl,
            )
        )
    for c in candles[cursor : cursor + 5]:
        venue.on_candle(c)
    return [_key(f) for f in venue.executions()]


def _prices(last: int, kind: str, offset: int, direction: int) -> tuple[int, int]:
    """(limit price, trigger price) in ticks for an order ``offset`` ticks from ``last``."""
    if kind in ("Market", "Bracket"):
        return 0, 0
    if kind == "Limit":
        return last + offset, 0
    trigger = last + abs(offset) if direction == 1 else last - abs(offset)
    return 0, trigger


def _bracket(last: int, kind: str, side: str, offset: int) -> tuple[int, int]:
    """(take profit, stop loss) ticks of a "Bracket" order: a market order with attached
    levels ``100 + |offset|`` ticks either side of ``last``; (0, 0) for other kinds."""
    if kind != "Bracket":
        return 0, 0
    d = 100 + abs(offset)
    return (last + d, last - d) if side == "Buy" else (last - d, last + d)


def _key(f: Fill) -> tuple[Any, ...]:
    return (f.client_id, f.side, f.price, f.qty, f.fee, f.is_maker, f.exec_type)


def emulated_fills(candles: Sequence[CandleClosed], orders: list[Order]) -> list[tuple[Any, ...]]:
    with EmulatorHandle.start(candles, EmulatorConfig(history=HISTORY)) as emu:
        http = client(emu)
        cursor = HISTORY
        for i, (wait, side, kind, qty, offset, direction, reduce_only) in enumerate(orders):
            emu.advance(wait)
            cursor += wait
            price, trigger = _prices(candles[cursor - 1].close, kind, offset, direction)
            tp, sl = _bracket(candles[cursor - 1].close, kind, side, offset)
            params: dict[str, Any] = {
                "category": "linear",
                "symbol": "BTCUSDT",
                "side": side,
                "orderType": "Limit" if price else "Market",
                "qty": INST.lots_to_qty(qty),
                "orderLinkId": f"p-{i}",
                "reduceOnly": reduce_only and kind != "Bracket",
            }
            if tp:
                params["takeProfit"] = INST.ticks_to_price(tp)
                params["stopLoss"] = INST.ticks_to_price(sl)
                params["tpslMode"] = "Full"
            if price:
                params["price"] = INST.ticks_to_price(price)
            if trigger:
                params["triggerPrice"] = INST.ticks_to_price(trigger)
                params["triggerDirection"] = direction
            try:
                http.place_order(**params)
            except Exception as exc:  # the backtest rejects the same orders (checked below)
                assert getattr(exc, "status_code", 0) in (110007, 110017, 110092, 110093, 110094)
        emu.advance(5)
        rows: list[dict[str, Any]] = []
        cursor_token = ""
        while True:
            kw: dict[str, Any] = {"category": "linear", "symbol": "BTCUSDT", "limit": 100}
            if cursor_token:
                kw["cursor"] = cursor_token
            page = http.get_executions(**kw)["result"]
            rows.extend(page["list"])
            cursor_token = page["nextPageCursor"]
            if not cursor_token:
                break
    rows.sort(key=lambda r: r["seq"])  # oldest first, as SimVenue lists them
    return [
        (
            r["orderLinkId"],
            r["side"],
            INST.price_to_ticks(r["execPrice"]),
            INST.qty_to_lots(r["execQty"]),
            money_from_str(r["execFee"]),
            r["isMaker"],
            r["execType"],
        )
        for r in rows
    ]


def test_scripted_session_matches_the_backtest(bybit_candles) -> None:
    orders: list[Order] = [
        (0, "Buy", "Market", 20, 0, 0, False),
        (2, "Sell", "Limit", 10, 300, 0, True),  # take-profit above the market
        (0, "Sell", "Stop", 10, 400, 2, True),  # stop below the market
        (3, "Buy", "Limit", 15, -200, 0, False),  # resting bid
        (4, "Sell", "Market", 5, 0, 0, False),
        (2, "Buy", "Stop", 10, 300, 1, False),  # breakout buy
        (3, "Sell", "Bracket", 40, 200, 0, False),  # flip short with attached TP/SL
    ]
    expected = backtest_fills(bybit_candles, orders)
    assert len(expected) >= 3  # the scenario really trades
    assert expected[-1][0] == "p-6-sl"  # the flip's attached stop, armed at its fill, fired
    assert emulated_fills(bybit_candles, orders) == expected


order_strategy = st.tuples(
    st.integers(0, 3),
    st.sampled_from(["Buy", "Sell"]),
    st.sampled_from(["Market", "Limit", "Stop", "Bracket"]),
    st.integers(1, 30),
    st.integers(-500, 500),
    st.sampled_from([1, 2]),
    st.booleans(),
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(orders=st.lists(order_strategy, min_size=1, max_size=5))
def test_random_sessions_match_the_backtest(bybit_candles, orders: list[Order]) -> None:
    fixed = [(w, s, k, q, o, d if k == "Stop" else 0, r) for (w, s, k, q, o, d, r) in orders]
    assert emulated_fills(bybit_candles, fixed) == backtest_fills(bybit_candles, fixed)
