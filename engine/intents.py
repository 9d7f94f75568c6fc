"""Intents -> order commands: sizing, rounding, risk, protective orders, execution styles.

The ``IntentProcessor`` turns what a strategy wants into what the venue is told, and
keeps the protective (stop / take-profit) orders in line with the position. It owns no
state of its own: everything lives in the ``EngineState`` it works on, so snapshots
capture it. Every intent yields ``IntentEmitted`` followed by commands, or by one
``RiskRejected`` with the reason (and then no command at all).

Rounding (documented in engine/README.md): sizes round *down* to the lot; prices round
to the tick on the side that is never worse for us -- buys down, sells up. That rule
covers limits (never pay more / receive less than asked), stops (a buy stop covering a
short rounds down: it triggers no later than asked) and take-profits alike.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Final

from engine.events import (
    BUY,
    REQUESTED,
    SELL,
    TRIGGERED,
    AmendOrder,
    CancelOrder,
    Event,
    Intent,
    IntentEmitted,
    RiskRejected,
    SubmitOrder,
    TimerFired,
    TimerSet,
)
from engine.orders import Order, opposite
from engine.risk import check_increase, pct_of
from engine.state import EngineState, Plan, Protection, Timeout, Timer


@lru_cache(maxsize=64)
def client_prefix(session_id: str) -> str:
    """The client-order-id prefix of a session: readable, unique and venue-legal.

    Bybit's orderLinkId takes at most 36 of [A-Za-z0-9_-] and must never repeat on an
    account, so the prefix is up to 10 sanitised characters of the session name plus 8
    hex digits of its hash (two sessions never share one); "-<n>" is appended per order.
    """
    name = re.sub(r"[^A-Za-z0-9_]", "_", session_id)[:10]
    digest = hashlib.blake2b(session_id.encode(), digest_size=4).hexdigest()
    return f"{name}-{digest}"


SLICE_PREFIX: Final = "slice:"
STYLES: Final = ("market", "limit", "iceberg", "twap")


#: No price, distance, size or count in an intent may exceed this (a guard against
#: garbage that would otherwise make the state unserializable; real values are far below).
MAX_INTENT_NUMBER: Final = 10**12


def _plain_numbers(i: Intent) -> bool:
    """Fast path: every number finite and small (NaN makes the sum fail the test too)."""
    ints = (i.qty, i.timeout_bars, i.slices, i.slice_every_bars, i.slice_every_ms)
    return (
        sum(map(abs, _floats(i))) <= MAX_INTENT_NUMBER and sum(map(abs, ints)) <= MAX_INTENT_NUMBER
    )


def _out_of_range(i: Intent) -> bool:
    ints = (i.qty, i.timeout_bars, i.slices, i.slice_every_bars, i.slice_every_ms)
    return any(abs(x) > MAX_INTENT_NUMBER for x in (*_floats(i), *ints))


def _floats(i: Intent) -> tuple[float, ...]:
    return (
        i.equity_pct,
        i.risk_pct,
        i.stop_distance,
        i.reduce_pct,
        i.price,
        i.stop_loss,
        i.take_profit,
        i.trail_distance,
        i.offset,
    )


def round_price(ticks: float, side: str) -> int:
    """A float price in ticks onto the grid: buys round down, sells round up."""
    return math.floor(ticks) if side == BUY else math.ceil(ticks)


def _ticks(distance: float) -> int:
    """A distance in ticks, rounded up (a stop further away never sizes a larger trade)."""
    return math.ceil(abs(distance))


class IntentProcessor:
    """Applies intents and order-lifecycle follow-ups to one ``EngineState``."""

    __slots__ = ("_handlers", "s")

    def __init__(self, state: EngineState) -> None:
        self.s = state
        self._handlers: dict[str, Callable[[Intent, int, list[Event]], str | None]] = {
            "enter_long": self._enter_long,
            "enter_short": self._enter_short,
            "add": self._add,
            "reduce": self._reduce,
            "exit": self._exit,
            "place_limit": self._place_limit,
            "set_stop": self._set_stop,
            "set_take_profit": self._set_take_profit,
            "trail_stop": self._trail_stop,
            "cancel_all": self._cancel_all,
        }

    # ------------------------------------------------------------------ entry point

    def process(self, intent: Intent, ts: int, out: list[Event]) -> None:
        """``IntentEmitted`` then the intent's commands, or a ``RiskRejected``."""
        out.append(IntentEmitted(ts, intent))
        handler = self._handlers.get(intent.action)
        if handler is None:
            reason: str | None = f"unknown action {intent.action!r}"
        elif not _plain_numbers(intent) and not all(map(math.isfinite, _floats(intent))):
            reason = "intent has a non-finite number"
        elif not _plain_numbers(intent) and _out_of_range(intent):
            reason = "intent has a number out of range"
        elif (intent.style or self.s.config.execution.style) not in STYLES:
            reason = f"unknown style {intent.style!r}"
        elif self.s.last_close <= 0:
            reason = "no price yet"
        else:
            reason = handler(intent, ts, out)
        if reason is not None:
            out.append(RiskRejected(ts, reason, intent))

    # --------------------------------------------------------------- command makers

    def submit(
        self,
        ts: int,
        out: list[Event],
        side: str,
        lots: int,
        purpose: str,
        *,
        price: int = 0,
        trigger: int = 0,
        direction: int = 0,
        reduce_only: bool = False,
    ) -> SubmitOrder:
        """Emit a ``SubmitOrder`` with the next client id and register it as Requested."""
        s = self.s
        s.order_seq += 1
        cmd = SubmitOrder(
            ts=ts,
            client_id=f"{client_prefix(s.session_id)}-{s.order_seq}",
            symbol=s.symbol,
            side=side,
            order_type="Limit" if price else "Market",
            qty=lots,
            price=price,
            trigger_price=trigger,
            trigger_direction=direction,
            reduce_only=reduce_only,
            purpose=purpose,
        )
        s.book.submit(cmd)
        s.ctx_dirty = True
        out.append(cmd)
        return cmd

    def cancel(self, ts: int, out: list[Event], order: Order, reason: str) -> None:
        """Ask the venue to cancel ``order`` (once: a pending cancel is not repeated)."""
        if not order.cancel_pending:
            order.cancel_pending = True
            out.append(CancelOrder(ts, order.client_id, reason))

    def cancel_all(self, ts: int, out: list[Event], reason: str, keep: str = "") -> None:
        """Cancel every open order (except those whose purpose is ``keep``); drop plans."""
        s = self.s
        for order in list(s.book.open.values()):
            if not keep or order.purpose != keep:
                self.cancel(ts, out, order, reason)
        s.plans.clear()
        s.timeouts.clear()
        s.protect.clear()
        s.timers = [t for t in s.timers if not t.key.startswith(SLICE_PREFIX)]
        s.stop_price = s.tp_price = s.trail = 0

    # -------------------------------------------------------------------- sizing

    def _size(self, intent: Intent, price: int) -> int | str:
        """Lots for an entry/add at ``price`` ticks, rounded down; or why none."""
        s = self.s
        inst = s.instrument
        if intent.qty > 0:
            lots = intent.qty
        elif intent.risk_pct > 0:
            dist = _ticks(intent.stop_distance)
            if dist == 0 and intent.stop_loss > 0:
                dist = _ticks(price - intent.stop_loss)
            if dist == 0:
                return "risk_pct sizing needs stop_distance or stop_loss"
            lots = pct_of(s.equity, intent.risk_pct) // (dist * s.notional_unit)
        else:
            pct = intent.equity_pct if intent.equity_pct > 0 else s.config.default_equity_pct
            lots = pct_of(s.equity, pct) // (price * s.notional_unit)
        if lots < max(inst.min_lots, 1):
            return f"size {lots} lots below min qty {max(inst.min_lots, 1)}"
        if inst.max_lots > 0 and lots > inst.max_lots:
            return f"size {lots} lots above max qty {inst.max_lots}"
        if inst.notional(price, lots) < inst.min_notional:
            return f"notional {inst.notional(price, lots)} below min {inst.min_notional}"
        return lots

    def _protection(self, intent: Intent, side: str, close: int) -> Protection | str:
        """Stop-loss / take-profit prices of an entry on ``side``, checked against the close."""
        exit_side = opposite(side)
        sl = round_price(intent.stop_loss, exit_side) if intent.stop_loss > 0 else 0
        tp = round_price(intent.take_profit, exit_side) if intent.take_profit > 0 else 0
        long = side == BUY
        if sl and (sl >= close if long else sl <= close):
            return f"stop_loss {sl} on the wrong side of the price {close}"
        if tp and (tp <= close if long else tp >= close):
            return f"take_profit {tp} on the wrong side of the price {close}"
        return Protection(sl, tp)

    # ------------------------------------------------------------------ handlers

    def _enter_long(self, intent: Intent, ts: int, out: list[Event]) -> str | None:
        return self._enter(intent, ts, out, BUY)

    def _enter_short(self, intent: Intent, ts: int, out: list[Event]) -> str | None:
        return self._enter(intent, ts, out, SELL)

    def _enter(self, intent: Intent, ts: int, out: list[Event], side: str) -> str | None:
        s = self.s
        qty = s.position.qty
        flip = qty != 0 and (qty > 0) != (side == BUY)
        if flip and not s.config.risk.allow_flip:
            return "opposite position open and allow_flip is off"
        purpose = "entry" if qty == 0 or flip else "add"
        if purpose == "entry" and self._entry_pending(side):
            return "entry already pending"
        return self._increase(intent, ts, out, side, purpose, flip_lots=abs(qty) if flip else 0)

    def _entry_pending(self, side: str) -> bool:
        """Is an entry on ``side`` still working (an order, or slices to come)?

        A strategy that says "enter long" on every bar while flat must not stack a new
        entry on each bar while the first is still resting or in flight.
        """
        s = self.s
        for order in s.book.open.values():
            if order.side == side and order.purpose in ("entry", "flip"):
                return True
        return any(p.side == side and p.purpose == "entry" for p in s.plans.values())

    def _add(self, intent: Intent, ts: int, out: list[Event]) -> str | None:
        qty = self.s.position.qty
        if qty == 0:
            return "no position to add to"
        return self._increase(intent, ts, out, BUY if qty > 0 else SELL, "add")

    def _increase(
        self, intent: Intent, ts: int, out: list[Event], side: str, purpose: str, flip_lots: int = 0
    ) -> str | None:
        s = self.s
        close = s.last_close
        lots = self._size(intent, close)
        if isinstance(lots, str):
            return lots
        prot = self._protection(intent, side, close)
        if isinstance(prot, str):
            return prot
        reason = check_increase(s, side, lots, close)
        if reason is not None:
            return reason
        ex = s.config.execution
        style = intent.style or ex.style
        if flip_lots:  # close the old side first; the entry below opens the new one
            self.submit(ts, out, side, flip_lots, "flip", reduce_only=True)
        if style in ("iceberg", "twap"):
            self._start_plan(intent, ts, out, side, lots, purpose, style, prot)
            return None
        if style == "limit":
            offset = _ticks(intent.offset or ex.limit_offset_ticks)
            price = round_price(close - offset if side == BUY else close + offset, side)
            cmd = self.submit(ts, out, side, lots, purpose, price=max(price, 1))
            bars = intent.timeout_bars or ex.limit_timeout_bars
            if bars > 0:
                s.timeouts[cmd.client_id] = Timeout(s.bars + bars, then_market=True)
        else:
            cmd = self.submit(ts, out, side, lots, purpose)
        if prot.stop_loss or prot.take_profit:
            s.protect[cmd.client_id] = prot
        return None

    def _start_plan(
        self,
        intent: Intent,
        ts: int,
        out: list[Event],
        side: str,
        lots: int,
        purpose: str,
        style: str,
        prot: Protection,
    ) -> None:
        s = self.s
        ex = s.config.execution
        inst = s.instrument
        n = max(intent.slices or ex.slices, 1)
        # Never cut a slice below the venue's minimum quantity or notional.
        n = min(n, lots // max(inst.min_lots, 1))
        if inst.min_notional > 0:
            n = min(n, inst.notional(s.last_close, lots) // inst.min_notional)
        n = max(n, 1)
        every = intent.slice_every_ms or ex.slice_every_ms
        if every <= 0:
            every = max(intent.slice_every_bars or ex.slice_every_bars, 1) * s.tf_ms
        plan_id = f"p{s.order_seq + 1}"
        plan = Plan(
            plan_id=plan_id,
            side=side,
            remaining=lots,
            slices_left=n,
            slice_lots=lots // n,
            every_ms=every,
            style=style,
            purpose=purpose,
            offset=_ticks(intent.offset or ex.limit_offset_ticks),
            stop_loss=prot.stop_loss,
            take_profit=prot.take_profit,
        )
        s.plans[plan_id] = plan
        self._next_slice(plan, ts, out)

    def _next_slice(self, plan: Plan, ts: int, out: list[Event]) -> None:
        s = self.s
        lots = plan.remaining if plan.slices_left == 1 else plan.slice_lots
        plan.remaining -= lots
        plan.slices_left -= 1
        price = 0
        if plan.style == "iceberg":
            close = s.last_close
            raw = close - plan.offset if plan.side == BUY else close + plan.offset
            price = max(round_price(raw, plan.side), 1)
        cmd = self.submit(ts, out, plan.side, lots, plan.purpose, price=price)
        if plan.stop_loss or plan.take_profit:
            s.protect[cmd.client_id] = Protection(plan.stop_loss, plan.take_profit)
        if plan.slices_left > 0 and plan.remaining > 0:
            self.set_timer(SLICE_PREFIX + plan.plan_id, ts + plan.every_ms, ts, out)
        else:
            del s.plans[plan.plan_id]

    def _reduce(self, intent: Intent, ts: int, out: list[Event]) -> str | None:
        qty = self.s.position.qty
        if qty == 0:
            return "no position to reduce"
        if intent.reduce_pct > 0:
            lots = min(pct_of(abs(qty), intent.reduce_pct), abs(qty))
        elif intent.qty > 0:
            lots = min(intent.qty, abs(qty))
        else:
            return "reduce needs reduce_pct or qty"
        if lots <= 0:
            return "reduce size rounds to zero lots"
        self.submit(ts, out, SELL if qty > 0 else BUY, lots, "reduce", reduce_only=True)
        return None

    def _exit(self, intent: Intent, ts: int, out: list[Event]) -> str | None:
        s = self.s
        qty = s.position.qty
        pending = any(o.purpose == "exit" for o in s.book.open.values())
        if qty == 0 and not s.book.open:
            return "no position and no open orders"
        if pending and qty != 0 and len(s.book.open) == 1:
            return "exit already pending"
        self.cancel_all(ts, out, "exit", keep="exit")
        if qty != 0 and not pending:
            self.submit(ts, out, SELL if qty > 0 else BUY, abs(qty), "exit", reduce_only=True)
        return None

    def _place_limit(self, intent: Intent, ts: int, out: list[Event]) -> str | None:
        """A resting limit on ``intent.side`` at ``intent.price`` (rounded never worse).

        Against an open position it is a reduce-only exit order (sized by reduce_pct,
        qty, or the whole position); otherwise an entry/add, sized and risk-checked
        like one. ``timeout_bars`` cancels it after that many bars (no market follow-up:
        the price was the point).
        """
        s = self.s
        close = s.last_close
        side = intent.side
        if side not in (BUY, SELL):
            return f"place_limit needs side Buy or Sell, not {side!r}"
        if intent.price <= 0:
            return "place_limit needs a price"
        price = max(round_price(intent.price, side), 1)
        qty = s.position.qty
        if qty != 0 and (qty > 0) != (side == BUY):
            if intent.reduce_pct > 0:
                lots = min(pct_of(abs(qty), intent.reduce_pct), abs(qty))
            elif intent.qty > 0:
                lots = min(intent.qty, abs(qty))
            else:
                lots = abs(qty)
            if lots <= 0:
                return "reduce size rounds to zero lots"
            cmd = self.submit(ts, out, side, lots, "limit_exit", price=price, reduce_only=True)
        else:
            sized = self._size(intent, price)
            if isinstance(sized, str):
                return sized
            prot = self._protection(intent, side, close)
            if isinstance(prot, str):
                return prot
            reason = check_increase(s, side, sized, price)
            if reason is not None:
                return reason
            cmd = self.submit(ts, out, side, sized, "limit", price=price)
            if prot.stop_loss or prot.take_profit:
                s.protect[cmd.client_id] = prot
        if intent.timeout_bars > 0:
            s.timeouts[cmd.client_id] = Timeout(s.bars + intent.timeout_bars, then_market=False)
        return None

    def _set_stop(self, intent: Intent, ts: int, out: list[Event]) -> str | None:
        s = self.s
        qty = s.position.qty
        if qty == 0:
            return "no position to protect"
        exit_side = SELL if qty > 0 else BUY
        close = s.last_close
        if intent.price > 0:
            price = round_price(intent.price, exit_side)
        elif intent.stop_distance > 0:
            d = _ticks(intent.stop_distance)
            price = close - d if qty > 0 else close + d
        else:
            price = 0  # remove the stop
        if price and (price >= close if qty > 0 else price <= close):
            return f"stop {price} on the wrong side of the price {close}"
        if price < 0:
            return f"stop {price} below zero"
        s.stop_price = price
        if price == 0:
            s.trail = 0
        self.sync_protection(ts, out)
        return None

    def _set_take_profit(self, intent: Intent, ts: int, out: list[Event]) -> str | None:
        s = self.s
        qty = s.position.qty
        if qty == 0:
            return "no position to protect"
        close = s.last_close
        price = round_price(intent.price, SELL if qty > 0 else BUY) if intent.price > 0 else 0
        if price and (price <= close if qty > 0 else price >= close):
            return f"take_profit {price} on the wrong side of the price {close}"
        s.tp_price = price
        self.sync_protection(ts, out)
        return None

    def _trail_stop(self, intent: Intent, ts: int, out: list[Event]) -> str | None:
        s = self.s
        if s.position.qty == 0:
            return "no position to protect"
        dist = _ticks(intent.trail_distance)
        if dist == 0:
            return "trail_stop needs trail_distance"
        s.trail = dist
        self.trail(ts, out)
        if s.stop_price == 0:
            return "trailing stop would be at or below zero"
        return None

    def _cancel_all(self, intent: Intent, ts: int, out: list[Event]) -> str | None:
        self.cancel_all(ts, out, "cancel_all")
        return None

    # ------------------------------------------------------- follow-ups from the fold

    def trail(self, ts: int, out: list[Event]) -> None:
        """Move the stop toward the price by the trail distance; never away from it."""
        s = self.s
        qty = s.position.qty
        if qty > 0:
            cand = s.last_close - s.trail
            if cand > 0 and cand > s.stop_price:
                s.stop_price = cand
                self.sync_protection(ts, out)
        elif qty < 0:
            cand = s.last_close + s.trail
            if s.stop_price == 0 or cand < s.stop_price:
                s.stop_price = cand
                self.sync_protection(ts, out)

    def sync_protection(self, ts: int, out: list[Event]) -> None:
        """Make the live stop / take-profit orders match the wanted prices and position size.

        Flat: cancel both and forget the wanted prices. Otherwise submit what is
        missing, cancel what points the wrong way, and amend size/trigger where they
        differ -- but never while a command for that order is still unanswered.
        """
        s = self.s
        qty = s.position.qty
        if qty == 0:
            s.stop_price = s.tp_price = s.trail = 0
        if not (s.stop_id or s.tp_id or s.stop_price or s.tp_price):
            return  # nothing wanted, nothing live
        s.stop_id = self._sync_one(ts, out, s.stop_id, s.stop_price, qty, "stop")
        s.tp_id = self._sync_one(ts, out, s.tp_id, s.tp_price, qty, "take_profit")

    def _sync_one(
        self, ts: int, out: list[Event], cid: str, want: int, qty: int, purpose: str
    ) -> str:
        s = self.s
        order = s.book.open.get(cid) if cid else None
        exit_side = SELL if qty > 0 else BUY
        if order is not None and (want == 0 or qty == 0 or order.side != exit_side):
            self.cancel(ts, out, order, "protection")
            order = None
        if order is None:
            if want == 0 or qty == 0:
                return ""
            # A long's stop triggers on a fall (2), its take-profit on a rise (1).
            falls = (purpose == "stop") == (qty > 0)
            cmd = self.submit(
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

    def set_timer(self, key: str, due: int, ts: int, out: list[Event]) -> None:
        """Schedule ``key`` (kept in due order, ties in insertion order)."""
        timers = self.s.timers
        i = len(timers)
        while i > 0 and timers[i - 1].due > due:
            i -= 1
        timers.insert(i, Timer(key, due))
        out.append(TimerSet(ts, key, due))

    def fire_timers(self, ts: int, out: list[Event]) -> None:
        """Derive ``TimerFired`` for every timer due at ``ts`` (in due order) and act on it."""
        s = self.s
        while s.timers and s.timers[0].due <= ts:
            key = s.timers.pop(0).key
            out.append(TimerFired(ts, key))
            if key.startswith(SLICE_PREFIX):
                plan = s.plans.get(key[len(SLICE_PREFIX) :])
                if plan is not None:
                    self._next_slice(plan, ts, out)

    def candle_work(self, ts: int, out: list[Event]) -> None:
        """Per-candle execution work: limit time-outs, then the trailing stop."""
        s = self.s
        if s.timeouts:
            for cid, t in list(s.timeouts.items()):
                if 0 <= t.due_bar <= s.bars:
                    order = s.book.open.get(cid)
                    if order is None:
                        del s.timeouts[cid]
                        continue
                    t.due_bar = -1  # cancel sent; the answer decides what follows
                    if not t.then_market:
                        del s.timeouts[cid]
                    self.cancel(ts, out, order, "timeout")
        if s.trail and s.position.qty:
            self.trail(ts, out)

    def order_closed(self, order: Order, ts: int, out: list[Event]) -> None:
        """An order ended: forget its bookkeeping; a timed-out limit sends its remainder."""
        s = self.s
        cid = order.client_id
        t = s.timeouts.pop(cid, None)
        prot = s.protect.pop(cid, None)
        if cid == s.stop_id:
            s.stop_id = ""
        elif cid == s.tp_id:
            s.tp_id = ""
        if t is None or t.due_bar != -1 or not t.then_market:
            return
        rest = order.qty - order.filled
        if rest <= 0 or s.halted or s.day_halted:
            return
        cmd = self.submit(ts, out, order.side, rest, order.purpose, reduce_only=order.reduce_only)
        if prot is not None:
            s.protect[cmd.client_id] = prot

    def position_changed(self, before: int, cid: str, ts: int, out: list[Event]) -> None:
        """After a fill or liquidation moved the position from ``before`` lots."""
        s = self.s
        after = s.position.qty
        if after != 0 and (before == 0 or (before > 0) != (after > 0)):
            s.stop_price = s.tp_price = s.trail = 0  # a new position: old levels are void
            s.bars_in_trade = 0
        prot = s.protect.get(cid) if cid else None
        if prot is not None and after != 0:
            if prot.stop_loss:
                s.stop_price = prot.stop_loss
            if prot.take_profit:
                s.tp_price = prot.take_profit
        if after == 0 and before != 0 and s.plans:
            closer = s.book.get(cid) if cid else None
            if closer is None or closer.purpose != "flip":
                # Stopped out (or exited) while slicing in: the rest of the plan is moot.
                s.plans.clear()
                s.timers = [t for t in s.timers if not t.key.startswith(SLICE_PREFIX)]
        self.sync_protection(ts, out)

    def halt(self, ts: int, out: list[Event]) -> None:
        """Kill switch: cancel every open order and every plan; forget protective levels."""
        self.cancel_all(ts, out, "halt")
