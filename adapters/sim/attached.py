"""Take-profit / stop-loss attached to an order, as Bybit attaches them (``tpslMode: Full``).

An order may carry ``take_profit`` / ``stop_loss`` (ticks; triggered by the last price).
They are checked against the order's base price when it is placed, and the moment the
order fills the venue arms them as reduce-only conditional market orders, named
``<parent id>-sl`` / ``<parent id>-tp`` (``engine.orders.attached_id``), that close the
whole position: armed at the size of that first fill, the venue then keeps their size equal
to the position (``OrderAmended``). A level already reached when it is armed fires at
once, at the price the path is at. These pure helpers build and check those orders;
``SimVenue`` decides when.
"""

from __future__ import annotations

from typing import Final

from adapters.sim.orders import MARKET, SimOrder
from engine.events import BUY, UNTRIGGERED, SubmitOrder
from engine.orders import armed_side, attached_id

#: Purposes of the attached levels, in arming order (stop first).
LEVELS: Final = ("stop", "take_profit")


def attach_error(cmd: SubmitOrder, base: int) -> str:
    """Why ``cmd``'s attached levels are refused ("" when fine or none).

    Bybit: reduce-only orders cannot carry TP/SL; a buy's stop must lie below its base
    price (the limit price, else the last price) and its target above; mirrored for a sell.
    """
    tp, sl = cmd.take_profit, cmd.stop_loss
    if not (tp or sl):
        return ""
    if tp < 0 or sl < 0:
        return "takeProfit/stopLoss must not be negative"
    if cmd.reduce_only:
        return "a reduce-only order cannot carry takeProfit/stopLoss"
    if not base:
        return ""
    buy = cmd.side == BUY
    if sl and (sl >= base if buy else sl <= base):
        side = "lower" if buy else "higher"
        return f"StopLoss {sl} set for a {cmd.side} order should be {side} than base price {base}"
    if tp and (tp <= base if buy else tp >= base):
        side = "higher" if buy else "lower"
        return f"TakeProfit {tp} set for a {cmd.side} order should be {side} than base price {base}"
    return ""


def armed_order(
    parent: SimOrder, purpose: str, level: int, lots: int, venue_id: str, seq: int
) -> SimOrder:
    """The reduce-only conditional market order one attached level becomes at the fill
    (named and directed by ``engine.orders``' rules, so engine and venue agree)."""
    side, direction = armed_side(parent.side, purpose)
    return SimOrder(
        client_id=attached_id(parent.client_id, purpose),
        venue_id=venue_id,
        symbol=parent.symbol,
        side=side,
        order_type=MARKET,
        qty=lots,
        price=0,
        trigger_price=level,
        trigger_direction=direction,
        tif="GTC",
        reduce_only=True,
        status=UNTRIGGERED,
        created_ts=parent.updated_ts,
        updated_ts=parent.updated_ts,
        purpose=purpose,
        seq=seq,
        parent=parent.client_id,
    )


def virtual_exits(parent: SimOrder) -> list[SimOrder]:
    """``parent``'s levels as unnumbered orders, to apply the both-hit rule to a candle
    whose open fills ``parent`` (its position exists for the whole path)."""
    out = []
    for purpose in LEVELS:
        level = parent.stop_loss if purpose == "stop" else parent.take_profit
        if level:
            out.append(armed_order(parent, purpose, level, parent.remaining, "", 0))
    return out
