"""Protective orders: keep one reduce-only stop and one take-profit in line with the position.

The wanted levels live in the state (``stop_price``, ``tp_price``, ``trail``); the live
orders are ``stop_id`` / ``tp_id``. ``sync_protection`` submits what is missing,
cancels what points the wrong way, and amends size or trigger where they differ --
never while a command for that order is unanswered, so amends are not stacked.
"""

from __future__ import annotations

from engine.commands import cancel, submit
from engine.events import BUY, REQUESTED, SELL, TRIGGERED, AmendOrder, Event
from engine.state import EngineState


def trail(s: EngineState, ts: int, out: list[Event]) -> None:
    """Move the stop toward the price by the trail distance; never away from it."""
    qty = s.position.qty
    if qty > 0:
        cand = s.last_close - s.trail
        if cand > 0 and cand > s.stop_price:
            s.stop_price = cand
            sync_protection(s, ts, out)
    elif qty < 0:
        cand = s.last_close + s.trail
        if s.stop_price == 0 or cand < s.stop_price:
            s.stop_price = cand
            sync_protection(s, ts, out)


def sync_protection(s: EngineState, ts: int, out: list[Event]) -> None:
    """Make the live stop / take-profit orders match the wanted levels and position size.

    Flat: cancel both and forget the wanted levels.
    """
    qty = s.position.qty
    if qty == 0:
        s.stop_price = s.tp_price = s.trail = 0
    if not (s.stop_id or s.tp_id or s.stop_price or s.tp_price):
        return  # nothing wanted, nothing live
    s.stop_id = _sync_one(s, ts, out, s.stop_id, s.stop_price, qty, "stop")
    s.tp_id = _sync_one(s, ts, out, s.tp_id, s.tp_price, qty, "take_profit")


def _sync_one(
    s: EngineState, ts: int, out: list[Event], cid: str, want: int, qty: int, purpose: str
) -> str:
    order = s.book.open.get(cid) if cid else None
    exit_side = SELL if qty > 0 else BUY
    if order is not None and (want == 0 or qty == 0 or order.side != exit_side):
        cancel(ts, out, order, "protection")
        order = None
    if order is None:
        if want == 0 or qty == 0:
            return ""
        # A long's stop triggers on a fall (2), its take-profit on a rise (1).
        falls = (purpose == "stop") == (qty > 0)
        cmd = submit(
            s,
            ts,
            out,
            exit_side,
            abs(qty),
            purpose,
            trigger=want,
            direction=2 if falls else 1,
            reduce_only=True,
        )
        return cmd.client_id
    if order.cancel_pending or order.amend_pending or order.status in (REQUESTED, TRIGGERED):
        return cid
    if order.filled:  # triggered and executing: let it finish
        return cid
    want_qty = order.filled + abs(qty)
    new_qty = want_qty if want_qty != order.qty else 0
    new_trigger = want if want != order.trigger_price else 0
    if new_qty or new_trigger:
        order.amend_pending = True
        out.append(AmendOrder(ts, cid, qty=new_qty, trigger_price=new_trigger))
    return cid
