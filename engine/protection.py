"""Protective orders: keep one reduce-only stop and one take-profit in line with the position.

The wanted levels live in the state (``stop_price``, ``tp_price``, ``trail``); the live
orders are ``stop_id`` / ``tp_id``. ``sync_protection`` submits what is missing,
cancels what points the wrong way, and amends size or trigger where they differ --
never while a command for that order is unanswered, so amends are not stacked.

An entry's own levels travel on the entry (``SubmitOrder.stop_loss`` / ``take_profit``,
Bybit's attached TP/SL in ``Full`` mode): the venue arms them the moment the entry
fills, as orders named ``<entry id>-sl`` / ``<entry id>-tp`` (``attached_id``), which the
engine adopts into its book at that fill (``arm_attached``). Their size is the venue's
business (the whole position); the engine only moves their triggers.

A position is never left naked: when protection the card asked for cannot exist
(rejected, already through the price, an amend refused) ``protection_failed`` logs a
``ProtectionFailed`` and closes the position with a reduce-only market order at once.
"""

from __future__ import annotations

from typing import Final

from engine.commands import cancel, submit
from engine.events import (
    BUY,
    REQUESTED,
    SELL,
    TRIGGERED,
    AmendOrder,
    Event,
    ProtectionFailed,
)
from engine.orders import Order, attached_id
from engine.state import EngineState, Protection

#: Purpose of the market order that closes a position whose protection failed.
PROTECT_CLOSE: Final = "protect_close"
PROTECTIVE: Final = ("stop", "take_profit")


def arm_attached(
    s: EngineState, parent: str, prot: Protection, price: int, ts: int, out: list[Event]
) -> None:
    """The order ``parent`` carrying attached levels filled at ``price``: make the stop and
    target the venue armed with it (registered by the book at the fill) the live ones, and
    report a level already passed at the fill.

    A level already passed when it is armed fires at once at the venue (its trigger is
    reached), so the close is that order's own execution, at the next price the venue
    reaches; ``ProtectionFailed`` records that the level could not protect the position.
    """
    for purpose, level in (("stop", prot.stop_loss), ("take_profit", prot.take_profit)):
        cid = attached_id(parent, purpose)
        live = s.stop_id if purpose == "stop" else s.tp_id
        if not level or live == cid or cid not in s.book.open:
            continue  # none, already live (a later partial fill), or already ended
        old = s.book.open.get(live) if live else None
        if old is not None and not old.parent:
            # Full mode: the newest levels replace the old ones. The venue replaces its own
            # armed orders itself; an order the engine placed, the engine cancels.
            cancel(ts, out, old, "protection")
        if purpose == "stop":
            s.stop_id = cid
        else:
            s.tp_id = cid
        falls = s.book.open[cid].trigger_direction == 2
        if (price <= level) if falls else (price >= level):
            name = "stop_loss" if purpose == "stop" else "take_profit"
            why = f"{name} {level} already passed at the fill {price}"
            out.append(ProtectionFailed(ts, why, cid, purpose, ""))


def protection_failed(
    s: EngineState, ts: int, out: list[Event], reason: str, cid: str, purpose: str
) -> None:
    """Protection the card asked for cannot exist: log it and close the position at market
    (one reduce-only close at a time; nothing to close when flat)."""
    qty = s.position.qty
    close: list[Event] = []
    close_id = ""
    if qty != 0 and not any(o.purpose == PROTECT_CLOSE for o in s.book.open.values()):
        side = SELL if qty > 0 else BUY
        close_id = submit(s, ts, close, side, abs(qty), PROTECT_CLOSE, reduce_only=True).client_id
    out.append(ProtectionFailed(ts, reason, cid, purpose, close_id))
    out.extend(close)


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


def flip_accepted(s: EngineState, flip: Order, ts: int, out: list[Event]) -> None:
    """The venue took a market flip (one order: the old position plus the new one): cancel
    the old position's stop and target, which would otherwise fire at the same price and
    let the flip open more than asked. The flip closes the old position at once."""
    for cid in (s.stop_id, s.tp_id):
        order = s.book.open.get(cid) if cid else None
        if order is not None and order.side == flip.side and order.reduce_only:
            cancel(ts, out, order, "flip")


def sync_protection(s: EngineState, ts: int, out: list[Event]) -> None:
    """Make the live stop / take-profit orders match the wanted levels and position size.

    Flat: cancel both and forget the wanted levels.
    """
    qty = s.position.qty
    if qty == 0:
        s.stop_price = s.tp_price = s.trail = 0
    if not (s.stop_id or s.tp_id or s.stop_price or s.tp_price):
        return  # nothing wanted, nothing live
    if qty != 0 and any(o.purpose == "flip" for o in s.book.open.values()):
        return  # a flip is on its way: it brings (or the fill re-syncs) the new side's levels
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
    # An armed attached level covers the whole position: the venue sizes it, not us.
    new_qty = want_qty if want_qty != order.qty and not order.parent else 0
    new_trigger = want if want != order.trigger_price else 0
    if new_qty or new_trigger:
        order.amend_pending = True
        out.append(AmendOrder(ts, cid, qty=new_qty, trigger_price=new_trigger))
    return cid
