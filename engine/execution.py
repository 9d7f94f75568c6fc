"""Execution styles over time: iceberg/TWAP slices on timers, limit time-outs, timers.

Time only comes from events: a plan's next slice is a ``TimerSet`` now and a
``TimerFired`` at the first candle or heartbeat with ``ts >= due``; a limit time-out
is counted in execution bars. Nothing sleeps.
"""

from __future__ import annotations

from engine.commands import SLICE_PREFIX, cancel, round_price, submit, ticks_up
from engine.events import BUY, Event, Intent, TimerFired, TimerSet
from engine.orders import Order
from engine.protection import trail
from engine.state import EngineState, Plan, Protection, Timer


def start_plan(
    s: EngineState,
    intent: Intent,
    ts: int,
    out: list[Event],
    side: str,
    lots: int,
    purpose: str,
    style: str,
    prot: Protection,
) -> None:
    """Work ``lots`` as slices: the first now, the rest on timers."""
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
        offset=ticks_up(intent.offset or ex.limit_offset_ticks),
        stop_loss=prot.stop_loss,
        take_profit=prot.take_profit,
    )
    s.plans[plan_id] = plan
    next_slice(s, plan, ts, out)


def next_slice(s: EngineState, plan: Plan, ts: int, out: list[Event]) -> None:
    """Send the plan's next slice (the last one takes the remainder); re-arm the timer."""
    lots = plan.remaining if plan.slices_left == 1 else plan.slice_lots
    plan.remaining -= lots
    plan.slices_left -= 1
    price = 0
    if plan.style == "iceberg":
        close = s.last_close
        raw = close - plan.offset if plan.side == BUY else close + plan.offset
        price = max(round_price(raw, plan.side), 1)
    prot = Protection(plan.stop_loss, plan.take_profit, attached=True)
    submit(s, ts, out, plan.side, lots, plan.purpose, price=price, protect=prot)
    if plan.slices_left > 0 and plan.remaining > 0:
        set_timer(s, SLICE_PREFIX + plan.plan_id, ts + plan.every_ms, ts, out)
    else:
        del s.plans[plan.plan_id]


def drop_plans(s: EngineState) -> None:
    """Forget every plan and its timers."""
    s.plans.clear()
    s.timers = [t for t in s.timers if not t.key.startswith(SLICE_PREFIX)]


def set_timer(s: EngineState, key: str, due: int, ts: int, out: list[Event]) -> None:
    """Schedule ``key`` (kept in due order, ties in insertion order)."""
    timers = s.timers
    i = len(timers)
    while i > 0 and timers[i - 1].due > due:
        i -= 1
    timers.insert(i, Timer(key, due))
    out.append(TimerSet(ts, key, due))


def fire_timers(s: EngineState, ts: int, out: list[Event]) -> None:
    """Derive ``TimerFired`` for every timer due at ``ts`` (in due order) and act on it."""
    while s.timers and s.timers[0].due <= ts:
        key = s.timers.pop(0).key
        out.append(TimerFired(ts, key))
        if key.startswith(SLICE_PREFIX):
            plan = s.plans.get(key[len(SLICE_PREFIX) :])
            if plan is not None:
                next_slice(s, plan, ts, out)


def candle_work(s: EngineState, ts: int, out: list[Event]) -> None:
    """Per-candle execution work: limit time-outs, then the trailing stop."""
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
                cancel(ts, out, order, "timeout")
    if s.trail and s.position.qty:
        trail(s, ts, out)


def order_closed(s: EngineState, order: Order, ts: int, out: list[Event]) -> None:
    """An order ended: forget its bookkeeping; a timed-out limit sends its remainder."""
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
    submit(s, ts, out, order.side, rest, order.purpose, reduce_only=order.reduce_only, protect=prot)
