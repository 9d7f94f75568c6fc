"""Intents -> order commands: what a strategy wants becomes what the venue is told.

The ``IntentProcessor`` sizes (qty / % of equity / risk per trade, rounded down to the
lot), checks risk (``engine.risk``), and emits commands through ``engine.commands``;
protective orders are kept in line by ``engine.protection``, slices and time-outs run
in ``engine.execution``. It owns no state of its own: everything lives in the
``EngineState`` it works on, so snapshots capture it. Every intent yields
``IntentEmitted`` followed by commands, or by one ``RiskRejected`` with the reason (and
then no command at all).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

from engine.commands import (
    cancel_all,
    client_prefix,
    round_price,
    submit,
    ticks_up,
)
from engine.events import (
    BUY,
    SELL,
    Event,
    Intent,
    IntentEmitted,
    RiskRejected,
)
from engine.execution import drop_plans, start_plan
from engine.orders import opposite
from engine.protection import arm_attached, protection_failed, sync_protection, trail
from engine.risk import check_increase, pct_of
from engine.state import EngineState, Protection, Timeout

__all__ = ["IntentProcessor", "client_prefix", "round_price"]

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


class IntentProcessor:
    """Applies intents and order-lifecycle follow-ups to one ``EngineState``."""

    __slots__ = ("_handlers", "_plain", "s")

    def __init__(self, state: EngineState) -> None:
        self.s = state
        # The last intent found plain (``_plain_numbers``): a card's intent without computed
        # values is the same frozen object on every bar, so its numbers are checked once.
        self._plain: Intent | None = None
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
        plain = handler is not None and (intent is self._plain or _plain_numbers(intent))
        if plain:
            self._plain = intent
        if handler is None:
            reason: str | None = f"unknown action {intent.action!r}"
        elif not plain and not all(map(math.isfinite, _floats(intent))):
            reason = "intent has a non-finite number"
        elif not plain and _out_of_range(intent):
            reason = "intent has a number out of range"
        elif (intent.style or self.s.config.execution.style) not in STYLES:
            reason = f"unknown style {intent.style!r}"
        elif self.s.last_close <= 0:
            reason = "no price yet"
        else:
            reason = handler(intent, ts, out)
        if reason is not None:
            out.append(RiskRejected(ts, reason, intent))

    # -------------------------------------------------------------------- sizing

    def _size(self, intent: Intent, price: int) -> int | str:
        """Lots for an entry/add at ``price`` ticks, rounded down; or why none."""
        s = self.s
        inst = s.instrument
        if intent.qty > 0:
            lots = intent.qty
        elif intent.risk_pct > 0:
            dist = ticks_up(intent.stop_distance)
            if dist == 0 and intent.stop_loss > 0:
                dist = ticks_up(price - intent.stop_loss)
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
        return Protection(sl, tp, attached=True)

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
        return bool(s.plans) and any(
            p.side == side and p.purpose == "entry" for p in s.plans.values()
        )

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
        if flip_lots and style == "market":
            # One order nets the old position and opens the new one (one-way mode): the
            # venue releases the closed part's margin before it charges the opening part.
            submit(s, ts, out, side, flip_lots + lots, "flip", protect=prot)
            return None
        if flip_lots:  # other styles: close the old side first; the entry opens the new one
            submit(s, ts, out, side, flip_lots, "flip", reduce_only=True)
        if style in ("iceberg", "twap"):
            start_plan(s, intent, ts, out, side, lots, purpose, style, prot)
            return None
        if style == "limit":
            offset = ticks_up(intent.offset or ex.limit_offset_ticks)
            price = round_price(close - offset if side == BUY else close + offset, side)
            cmd = submit(s, ts, out, side, lots, purpose, price=max(price, 1), protect=prot)
            bars = intent.timeout_bars or ex.limit_timeout_bars
            if bars > 0:
                s.timeouts[cmd.client_id] = Timeout(s.bars + bars, then_market=True)
        else:
            submit(s, ts, out, side, lots, purpose, protect=prot)
        return None

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
        submit(self.s, ts, out, SELL if qty > 0 else BUY, lots, "reduce", reduce_only=True)
        return None

    def _exit(self, intent: Intent, ts: int, out: list[Event]) -> str | None:
        s = self.s
        qty = s.position.qty
        if qty == 0 and not s.book.open:
            return "no position and no open orders"
        pending = any(o.purpose == "exit" for o in s.book.open.values())
        if pending and qty != 0 and len(s.book.open) == 1:
            return "exit already pending"
        cancel_all(self.s, ts, out, "exit", keep="exit")
        if qty != 0 and not pending:
            submit(s, ts, out, SELL if qty > 0 else BUY, abs(qty), "exit", reduce_only=True)
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
            cmd = submit(s, ts, out, side, lots, "limit_exit", price=price, reduce_only=True)
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
            cmd = submit(s, ts, out, side, sized, "limit", price=price, protect=prot)
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
            d = ticks_up(intent.stop_distance)
            price = close - d if qty > 0 else close + d
        else:
            price = 0  # remove the stop
        if (price and (price >= close if qty > 0 else price <= close)) or price < 0:
            why = f"stop {price} on the wrong side of the price {close}"
            protection_failed(s, ts, out, why, s.stop_id, "stop")
            return None
        s.stop_price = price
        if price == 0:
            s.trail = 0
        sync_protection(self.s, ts, out)
        return None

    def _set_take_profit(self, intent: Intent, ts: int, out: list[Event]) -> str | None:
        s = self.s
        qty = s.position.qty
        if qty == 0:
            return "no position to protect"
        close = s.last_close
        price = round_price(intent.price, SELL if qty > 0 else BUY) if intent.price > 0 else 0
        if price and (price <= close if qty > 0 else price >= close):
            why = f"take_profit {price} on the wrong side of the price {close}"
            protection_failed(s, ts, out, why, s.tp_id, "take_profit")
            return None
        s.tp_price = price
        sync_protection(self.s, ts, out)
        return None

    def _trail_stop(self, intent: Intent, ts: int, out: list[Event]) -> str | None:
        s = self.s
        if s.position.qty == 0:
            return "no position to protect"
        dist = ticks_up(intent.trail_distance)
        if dist == 0:
            return "trail_stop needs trail_distance"
        s.trail = dist
        trail(s, ts, out)
        if s.stop_price == 0:
            why = f"trailing stop {s.last_close - dist} would be at or below zero"
            protection_failed(s, ts, out, why, s.stop_id, "stop")
        return None

    def _cancel_all(self, intent: Intent, ts: int, out: list[Event]) -> str | None:
        cancel_all(self.s, ts, out, "cancel_all")
        return None

    # ------------------------------------------------------- follow-ups from the fold

    def position_changed(
        self, before: int, cid: str, ts: int, out: list[Event], price: int = 0
    ) -> None:
        """After a fill (at ``price``) or liquidation moved the position from ``before`` lots."""
        s = self.s
        after = s.position.qty
        if before != 0 and (after == 0 or (before > 0) != (after > 0)):
            s.last_exit_bar = s.bars  # the position closed (or flipped) on this bar
        if after != 0 and (before == 0 or (before > 0) != (after > 0)):
            s.stop_price = s.tp_price = s.trail = 0  # a new position: old levels are void
            s.bars_in_trade = 0
            s.adds_in_trade = 0
            s.trades_today += 1
        elif before != 0 and abs(after) > abs(before):
            s.adds_in_trade += 1
        prot = s.protect.get(cid) if cid else None
        if prot is not None and after != 0:
            if prot.stop_loss:
                s.stop_price = prot.stop_loss
            if prot.take_profit:
                s.tp_price = prot.take_profit
            if prot.attached:
                arm_attached(s, cid, prot, price, ts, out)
        if after == 0 and before != 0 and s.plans:
            closer = s.book.get(cid) if cid else None
            if closer is None or closer.purpose != "flip":
                # Stopped out (or exited) while slicing in: the rest of the plan is moot.
                drop_plans(s)
        sync_protection(self.s, ts, out)

    def halt(self, ts: int, out: list[Event]) -> None:
        """Kill switch: cancel every open order and every plan; forget protective levels."""
        cancel_all(self.s, ts, out, "halt")
