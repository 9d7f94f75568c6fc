"""Engine snapshots beside a session's log, so a restart folds only the log's tail.

A snapshot is the engine state (``engine.core.snapshot_state``) and the reconciliation
view after the event with sequence number ``seq``. Snapshots live in their own stream,
``<session>.snapshots`` (kind ``snapshots``): the session's log stays pure events, and a
lost or damaged snapshot costs only time (the daemon then refolds from the start).
A snapshot is trusted only if refolding would give the same state: the engine's hash
of the restored state is checked against the one recorded with it, and it carries the
hash of the engine code that made it (``replay.core.engine_code_hash``): a resume under
other code refolds (and verifies) the whole log instead of trusting the snapshot.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from engine.core import snapshot_state
from engine.hashing import state_hash
from engine.state import EngineState
from eventstore import EventStore, StreamNotFound, Writer
from projections.reconcile import ReconcileView
from replay.core import engine_code_hash

KIND = "snapshots"


class Snapshot(msgspec.Struct):
    seq: int  # the last event of the session folded into this state
    engine: bytes
    state_hash: str
    view: bytes
    last_candle_open: int = -1
    code_hash: str = ""  # replay.core.engine_code_hash() of the process that saved it


def stream_name(session: str) -> str:
    return f"{session}.snapshots"


def open_writer(store: EventStore, session: str) -> Writer:
    """The durable writer of the session's snapshot stream (created on first use)."""
    name = stream_name(session)
    stream = store.stream(name) if name in store else store.create_stream(name, kind=KIND)
    return stream.writer(durable=True)


def save(
    writer: Writer, seq: int, state: EngineState, view: ReconcileView, last_candle_open: int
) -> None:
    snap = Snapshot(
        seq,
        snapshot_state(state),
        state_hash(state),
        view.snapshot(),
        last_candle_open,
        engine_code_hash(),
    )
    writer.append(msgspec.msgpack.encode(snap))


def load_latest(
    store: EventStore, session: str, restore: Callable[[bytes], EngineState]
) -> Snapshot | None:
    """The newest usable snapshot, or None (no stream, none written, or it does not check).

    ``restore`` turns the snapshot's engine bytes into a state (``replay.core.SessionCore
    .restore``); the state's hash must be the one recorded with it.
    """
    try:
        stream = store.stream(stream_name(session))
    except StreamNotFound:
        return None
    last = stream.last_seq
    if last == 0:
        return None
    for _, raw in stream.read(last, last):
        snap = msgspec.msgpack.decode(raw, type=Snapshot)
        return snap if state_hash(restore(snap.engine)) == snap.state_hash else None
    return None
