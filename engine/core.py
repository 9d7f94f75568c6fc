"""The fold: ``step(state, event) -> derived events``, the only way engine state changes.

``step`` takes INPUT events only (``engine.events.INPUT_TYPES``); the derived events
it returns are appended to the log by the caller and never fed back. Derived events
passed in by mistake, and input kinds the engine has no use for (snapshots,
reconciliation notes), are counted and otherwise ignored. No input can crash the
fold: anything the order state machine refuses becomes a ``TransitionRejected``.

Per input event, in order: the event's own effect, then (every
``config.checkpoint_every`` folded events) a ``Checkpoint`` with the state hash.
An execution candle does: day rollover, due timers, limit time-outs and trailing
stop, the ``MarketContext`` update, then the strategy (its intents are acted on only
when it is warm and the candle is not backfill).
"""

from __future__ import annotations

from collections.abc import Callable
from operator import truediv  # int / int rounded once, as Python does, also under mypyc
from typing import Final

from engine.commands import cancel
from engine.config import EngineConfig
from engine.events import (
    TRIGGERED,
    CandleClosed,
    Checkpoint,
    CommandRejected,
    Event,
    Fill,
    FundingPaid,
    Halt,
    Halted,
    Heartbeat,
    Liquidated,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderTriggered,
    PositionDrift,
    SessionStarted,
    SessionStopped,
    TransitionRejected,
)
from engine.execution import candle_work, fire_timers, order_closed
from engine.hashing import state_hash
from engine.intents import IntentProcessor
from engine.orders import TransitionError, VenueOrderEvent
from engine.protection import PROTECTIVE, flip_accepted, protection_failed, sync_protection
from engine.risk import check_daily_loss, roll_day
from engine.state import EngineState, decode_state, encode_state
from engine.strategy import Strategy

__all__ = ["EngineState", "new_state", "restore_state", "snapshot_state", "step"]


def new_state(started: SessionStarted, strategy: Strategy, config: EngineConfig) -> EngineState:
    """A fresh state for the session ``started`` describes (instrument, timeframe, balance)."""
    state = EngineState(
        started.session_id,
        started.instrument,
        started.timeframe,
        started.initial_balance,
        strategy,
        config,
    )
    state.ts = started.ts
    state.proc = IntentProcessor(state)
    return state


def snapshot_state(state: EngineState) -> bytes:
    """Exact bytes of the state (strategy included via ``strategy.snapshot()``)."""
    return encode_state(state)


def restore_state(data: bytes, strategy: Strategy) -> EngineState:
    """Inverse of ``snapshot_state``; ``strategy`` is restored from the snapshot."""
    state = decode_state(data, strategy)
    state.proc = IntentProcessor(state)
    return state


# ---------------------------------------------------------------------------- fold


def step(state: EngineState, event: Event) -> list[Event]:
    """Fold one input event; return the derived events it causes, in order (a new list)."""
    out: list[Event] = []
    if type(event) is CandleClosed:
        # The hot path: kept inline and allocation-free for a strategy that does nothing.
        if event.timeframe == state.timeframe and event.symbol == state.symbol:
            ts = event.ts
            state.ts = ts
            if ts >= state.next_day_ms:
                roll_day(state)
                state.ctx_dirty = True
            state.last_close = state.account.marks[event.symbol] = event.close
            state.bars += 1
            if state.timers and state.timers[0].due <= ts:
                fire_timers(state, ts, out)
            if state.timeouts or state.trail:
                candle_work(state, ts, out)
            if state.position.qty:
                state.bars_in_trade += 1
                if state.config.risk.daily_loss_limit_pct > 0:
                    check_daily_loss(state)
                _update_ctx(state)
            elif state.ctx_dirty:
                _update_ctx(state)
            ctx = state.ctx
            ctx.bars_since_exit = state.bars - state.last_exit_bar
            ctx.trades_today = state.trades_today
            ctx.adds_in_trade = state.adds_in_trade if state.position.qty else 0
            intents = state.on_candle(event, ctx)
            if intents and not event.backfill and state.is_warm():
                process = state.proc.process
                for intent in intents:
                    process(intent, ts, out)
    else:
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(state, event, out)
            state.ctx_dirty = True
    state.folded += 1
    if state.folded == state.next_checkpoint:
        state.next_checkpoint += state.checkpoint_every
        out.append(Checkpoint(event.ts, state.folded, state_hash(state)))
    return out


def _update_ctx(state: EngineState) -> None:
    """Refresh the strategy's ``MarketContext`` in place (marked at the last close)."""
    ctx = state.ctx
    pos = state.position
    balance = state.account.balance
    qty = pos.qty
    ctx.position_qty = qty
    ctx.bars_in_trade = state.bars_in_trade if qty else 0
    ctx.balance = balance
    ctx.open_orders = len(state.book.open)
    ctx.halted = state.halted or state.day_halted
    if qty and state.last_close:
        unit = state.notional_unit
        unrealized = state.account.unrealized(state.symbol, state.last_close)
        ctx.avg_entry = truediv(pos.entry_value, abs(qty) * unit)
        ctx.unrealized = unrealized
        ctx.unrealized_pct = unrealized * 100.0 / pos.entry_value if pos.entry_value else 0.0
        ctx.equity = balance + unrealized
    else:
        ctx.avg_entry = 0.0
        ctx.unrealized = 0
        ctx.unrealized_pct = 0.0
        ctx.equity = balance
    state.ctx_dirty = False


def _reject(out: list[Event], ts: int, err: TransitionError) -> None:
    out.append(TransitionRejected(ts, err.client_id, err.event, err.state, err.reason))


def _on_venue_order(state: EngineState, ev: VenueOrderEvent, out: list[Event]) -> None:
    res = state.book.venue_event(ev)
    if isinstance(res, TransitionError):
        _reject(out, ev.ts, res)
        return
    if type(ev) is OrderRejected and res.purpose in PROTECTIVE and state.position.qty:
        why = f"{res.purpose} rejected: {ev.code} {ev.reason}".replace(": 0 ", ": ")
        protection_failed(state, ev.ts, out, why, res.client_id, res.purpose)
    if not res.is_open:
        order_closed(state, res, ev.ts, out)
    elif type(ev) is OrderAccepted and (res.client_id in (state.stop_id, state.tp_id)):
        sync_protection(state, ev.ts, out)  # changes wanted while it was Requested
    elif type(ev) is OrderAccepted and res.purpose == "flip" and not res.reduce_only:
        flip_accepted(state, res, ev.ts, out)


def _on_fill(state: EngineState, ev: Fill, out: list[Event]) -> None:
    before = state.position.qty
    res = state.account.fill(ev)
    if isinstance(res, TransitionError):
        _reject(out, ev.ts, res)
        return
    state.proc.position_changed(before, ev.client_id, ev.ts, out, ev.price)
    if not res.is_open:
        order_closed(state, res, ev.ts, out)


def _on_command_rejected(state: EngineState, ev: CommandRejected, out: list[Event]) -> None:
    res = state.account.command_rejected(ev)
    if isinstance(res, TransitionError):
        _reject(out, ev.ts, res)
        return
    # No automatic retry: the next position change or intent re-syncs if still needed.
    if ev.command == "amend":
        executing = res.status == TRIGGERED or res.filled
        if res.purpose in PROTECTIVE and state.position.qty and not executing:
            why = f"{res.purpose} amend refused: {ev.code} {ev.reason}"
            protection_failed(state, ev.ts, out, why, res.client_id, res.purpose)
    elif ev.command == "cancel":
        t = state.timeouts.get(ev.client_id)
        if t is not None and t.due_bar == -1:
            del state.timeouts[ev.client_id]  # no market follow-up for a refused cancel


def _on_funding(state: EngineState, ev: FundingPaid, out: list[Event]) -> None:
    err = state.account.funding(ev)
    if err is not None:
        _reject(out, ev.ts, err)


def _on_liquidated(state: EngineState, ev: Liquidated, out: list[Event]) -> None:
    before = state.position.qty
    err = state.account.liquidation(ev)
    if err is not None:
        _reject(out, ev.ts, err)
        return
    state.proc.position_changed(before, "", ev.ts, out)


def _on_halt(state: EngineState, ev: Halt, out: list[Event]) -> None:
    state.halted = True
    state.halt_reason = ev.reason
    out.append(Halted(ev.ts, ev.reason))
    state.proc.halt(ev.ts, out)


def _on_drift(state: EngineState, ev: PositionDrift, out: list[Event]) -> None:
    """Adopt the venue's position when the drift says so (see ``PositionDrift``)."""
    if state.account.adopt(ev):
        sync_protection(state, ev.ts, out)  # protective orders follow the adopted size


def _on_stopped(state: EngineState, ev: SessionStopped, out: list[Event]) -> None:
    """A stop that cancels on exit: every order the venue has accepted gets a cancel."""
    if ev.cancel_open:
        for order in list(state.book.open.values()):
            if order.status != "Requested":
                cancel(ev.ts, out, order, "shutdown")


def _on_heartbeat(state: EngineState, ev: Heartbeat, out: list[Event]) -> None:
    if ev.ts > state.ts:
        state.ts = ev.ts
    if state.timers and state.timers[0].due <= ev.ts:
        fire_timers(state, ev.ts, out)


_Handler = Callable[[EngineState, Event, list[Event]], None]
_HANDLERS: Final[dict[type, _Handler]] = {
    OrderAccepted: _on_venue_order,  # type: ignore[dict-item]
    OrderRejected: _on_venue_order,  # type: ignore[dict-item]
    OrderTriggered: _on_venue_order,  # type: ignore[dict-item]
    OrderAmended: _on_venue_order,  # type: ignore[dict-item]
    OrderCancelled: _on_venue_order,  # type: ignore[dict-item]
    OrderExpired: _on_venue_order,  # type: ignore[dict-item]
    Fill: _on_fill,  # type: ignore[dict-item]
    CommandRejected: _on_command_rejected,  # type: ignore[dict-item]
    FundingPaid: _on_funding,  # type: ignore[dict-item]
    Liquidated: _on_liquidated,  # type: ignore[dict-item]
    Halt: _on_halt,  # type: ignore[dict-item]
    Heartbeat: _on_heartbeat,  # type: ignore[dict-item]
    PositionDrift: _on_drift,  # type: ignore[dict-item]
    SessionStopped: _on_stopped,  # type: ignore[dict-item]
}
