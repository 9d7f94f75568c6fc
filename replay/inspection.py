"""``replay inspect``: a session's events, or its state as it was at any sequence number.

The state is rebuilt, not stored: the log up to ``--at`` is refolded by the session
core (``replay.core.refold``, the same loop ``verify`` and a daemon's resume use) and
the engine's own snapshot is shown, next to the account projection (position, balance,
equity) folded from the same events.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from engine.core import snapshot_state
from engine.events import EventBase, to_dict
from engine.instrument import MONEY_SCALE
from engine.state import EngineState
from eventstore import EventStore, LogCorruptError
from eventstore.checked import check_stream
from projections.account import AccountView
from replay.commands.units import humanize
from replay.core import refold
from replay.errors import InputError
from replay.report import iso
from replay.verify import read_session


def list_events(
    store: EventStore,
    session_id: str,
    *,
    first: int = 1,
    type_name: str | None = None,
    limit: int | None = None,
) -> Iterator[tuple[int, EventBase]]:
    """Events from ``first`` on, optionally of one type, at most ``limit`` of them."""
    shown = 0
    for seq, event in read_session(store, session_id):
        if seq < first or (type_name and type(event).__name__ != type_name):
            continue
        yield seq, event
        shown += 1
        if limit is not None and shown >= limit:
            return


def _fold_to(
    store: EventStore, session_id: str, at: int | None
) -> tuple[int, int, EngineState | None, AccountView]:
    """Fold the session up to and including seq ``at`` (default: the last)."""
    last = store.stream(session_id).last_seq
    if at is not None and not 1 <= at <= last:
        raise InputError(f"--at {at}: {session_id} has events 1..{last}; pick one of those")
    check_stream(store, session_id)
    view = AccountView()
    times = [0]

    def observe(seq: int, event: EventBase) -> None:
        times[0] = event.ts
        view.apply(event)

    core, done = refold(
        store.stream(session_id).read(),
        verify=False,
        until=at,
        observe=observe,
        source=f"{session_id}:card",
    )
    if done.divergence is not None:
        d = done.divergence
        if d.reason.startswith("undecodable"):
            raise LogCorruptError(str(store.path), d.reason, seq=d.seq)
        raise ValueError(f"{session_id}: {d.reason} (seq {d.seq})")
    return done.last_seq, times[0], core.state if core is not None else None, view


def _account(view: AccountView) -> dict[str, Any]:
    instr = view.instrument
    return {
        "position_qty": instr.lots_to_qty(view.position.qty) if instr else "0",
        "avg_entry": (
            instr.ticks_to_float(view.position.avg_entry_ticks(instr.notional_unit))
            if instr
            else 0.0
        ),
        "balance": view.balance / MONEY_SCALE,
        "equity": view.equity / MONEY_SCALE,
        "realized": view.position.realized / MONEY_SCALE,
        "fees": view.position.fees / MONEY_SCALE,
        "closed_trades": len(view.trades),
    }


def state_at(store: EventStore, session_id: str, at: int | None = None) -> dict[str, Any]:
    """Everything: the engine state and account after the event with seq ``at`` (``--full``)."""
    seq, ts, state, view = _fold_to(store, session_id, at)
    engine_state = msgspec.msgpack.decode(snapshot_state(state)) if state is not None else None
    return {"seq": seq, "ts": ts, "account": _account(view), "engine": engine_state}


def summary_at(
    store: EventStore, session_id: str, at: int | None = None, *, raw: bool = False
) -> dict[str, Any]:
    """What a person asks first: position, open orders, balance, whether features are warm."""
    seq, ts, state, view = _fold_to(store, session_id, at)
    instr = view.instrument
    orders = []
    if state is not None:
        for order in state.book.open.values():
            row = {"type": "Order", **msgspec.to_builtins(order)}
            orders.append(row if raw or instr is None else humanize(row, instr))
    return {
        "seq": seq,
        "ts": ts,
        "time": iso(ts),
        "account": _account(view),
        "open_orders": orders,
        "warm": bool(state is not None and state.strategy.is_warm()),
        "halted": bool(state is not None and state.halted),
    }


def event_row(seq: int, event: EventBase) -> dict[str, Any]:
    row = {"seq": seq}
    row.update(to_dict(event))
    return row
