"""A daemon's restart: rebuild a session from its log, and refuse a log this engine disowns.

``resume(store, session, given_card)`` opens the session from its ``SessionStarted``
(the card passed on the command line must be the one it was started with) and refolds
the log through the session core with ``verify`` on (``replay.core.refold``): every
event the engine derives again must equal, byte for byte, the one the log holds.

Fast path: the newest snapshot (``replay.snapshots``) is used when its engine-code hash
is this process's (``replay.core.engine_code_hash``); then only the log after the
snapshot is refolded and verified. A snapshot written by other code, or
``refold_all=True`` (``--refold``), refolds and verifies the log from seq 1.

A log whose derived events this engine no longer reproduces is refused
(``ResumeRefused``, exit 2, naming the first differing seq and both engine versions):
continuing it would append events derived by other rules to a log that says
otherwise, and the engine's state would not be the one the log describes. Nothing has
been sent to the venue at that point.

The explicit override, ``fork_to=NEW`` (``--fork-on-divergence NEW``), forks a new
session instead: a new stream ``NEW`` whose ``SessionStarted`` records the origin
(``settings["forked_from"] = "OLD@SEQ"``, also in the stream's metadata) and whose log
holds every input of the old one, re-derived by this engine. The fork verifies under
this engine; the old log is kept untouched. Orders the new rules derive from old inputs
were never sent: reconciliation finds them unknown to the venue, as it finds any command
committed before a crash, and sends them once.
"""

from __future__ import annotations

import logging

import msgspec

from engine.events import (
    DERIVED_TYPES,
    CandleClosed,
    Event,
    EventBase,
    SessionStarted,
    decode,
    encode,
)
from eventstore import EventStore, Writer
from projections.reconcile import ReconcileView
from replay import __version__, snapshots
from replay.cards import LoadedCard
from replay.core import SessionCore, card_from_log, engine_code_hash, refold
from replay.errors import InputError
from replay.verify import version_note

log = logging.getLogger("replay.daemon")

_DERIVED = frozenset(DERIVED_TYPES)


class ResumeRefused(InputError):
    """The log no longer verifies under this engine; the message says where and what to do."""


class Resumed(msgspec.Struct, kw_only=True):
    """A session rebuilt from its log, ready to take the next input."""

    session: str  # the session that continues (the fork's name after a fork)
    core: SessionCore
    view: ReconcileView
    last_seq: int
    last_candle_open: int = -1
    last_candle_close: int = -1
    snapshot_seq: int = 0  # the snapshot the fold started from (0: from seq 1)
    writer: Writer | None = None  # the fork's writer, already open
    forked_from: str = ""


def first_event(store: EventStore, session: str) -> SessionStarted:
    first = next(iter(store.stream(session).read(1, 1)), None)
    started = decode(first[1]) if first else None
    if not isinstance(started, SessionStarted):
        raise InputError(f"{session}: the log does not begin with SessionStarted")
    return started


def resume(
    store: EventStore,
    session: str,
    given: LoadedCard,
    *,
    refold_all: bool = False,
    fork_to: str | None = None,
) -> Resumed:
    """Rebuild ``session`` from its log (see the module docstring)."""
    started = first_event(store, session)
    note = version_note(started.version)
    if note:
        log.warning("session %s was %s: its log is verified by this version's rules", session, note)
    if given.hash != started.card_hash:
        raise InputError(
            f"session {session} was started with the card {started.card_path} "
            f"and {given.source} differs from it (sha256 {given.hash[:12]} against "
            f"{started.card_hash[:12]}); resume with that card, or start a new --session"
        )
    card = card_from_log(started)
    timeframe = started.timeframe
    stream = store.stream(session)
    core: SessionCore | None = None
    marks = [-1, -1]  # the newest execution candle's open and close
    snap = snapshots.load_latest(
        store, session, lambda data: SessionCore.restore(started, card, data).state
    )
    start = 1
    if snap is not None and snap.code_hash == engine_code_hash() and not refold_all:
        core = SessionCore.restore(started, card, snap.engine)
        view = ReconcileView.restore(snap.view, core.state.account, session)
        marks[0] = snap.last_candle_open
        start = snap.seq + 1
        log.info("restored the snapshot at seq %d", snap.seq)
    else:
        if snap is not None:
            why = "--refold" if refold_all else "the snapshot was written by other engine code"
            log.info("refolding and verifying the whole log (%s)", why)
        # Opened here, not by refold, so the view reads this engine's own book.
        core = SessionCore.open(started, card)
        view = ReconcileView(started.instrument.symbol, core.state.account, session)

    def observe(seq: int, event: EventBase) -> None:
        view.apply(event)
        if type(event) is CandleClosed and event.timeframe == timeframe:
            marks[0], marks[1] = event.open_ms, event.close_ms

    core, done = refold(stream.read(start), core, verify=True, observe=observe)
    if done.divergence is None and core is not None:
        last = done.last_seq or start - 1
        return Resumed(
            session=session,
            core=core,
            view=view,
            last_seq=last,
            last_candle_open=marks[0],
            last_candle_close=marks[1],
            snapshot_seq=start - 1,
        )
    d = done.divergence
    seq, reason = (d.seq, d.reason) if d is not None else (1, "no session in the log")
    versions = f" ({note})" if note else f" (written by this engine version, {started.version})"
    if fork_to is None:
        raise ResumeRefused(
            f"session {session} no longer verifies under this engine: at seq {seq}: "
            f"{reason}{versions}. Nothing was sent. See `replay verify {session}`; to go on "
            f"from the state this engine folds from the log's inputs, start a new session "
            f"with --fork-on-divergence NEW_SESSION (the old log is kept)"
        )
    return fork(store, session, started, card, fork_to, seq)


def fork(
    store: EventStore,
    session: str,
    started: SessionStarted,
    card: LoadedCard,
    fork_to: str,
    seq: int,
) -> Resumed:
    """A new session ``fork_to``: the old log's inputs, re-derived by this engine."""
    if fork_to in store:
        raise InputError(f"--fork-on-divergence {fork_to}: that session exists; pick a new name")
    origin = f"{session}@{seq}"
    log.warning(
        "session %s diverges at seq %d under this engine; forking it as %s "
        "(--fork-on-divergence): every input re-derived by this engine",
        session,
        seq,
        fork_to,
    )
    settings = {**started.settings, "forked_from": origin}
    new_started = msgspec.structs.replace(
        started, session_id=fork_to, settings=settings, version=__version__
    )
    stream = store.create_stream(
        fork_to,
        kind=started.mode,
        meta={"status": "running", "card": started.card_path, "forked_from": origin},
    )
    writer = stream.writer(durable=True)
    buf: list[bytes] = []
    marks = [-1, -1]

    def sink(event: EventBase, derived: list[Event]) -> None:
        for e in (event, *derived):
            buf.append(encode(e))
            view.apply(e)
            if type(e) is CandleClosed and e.timeframe == started.timeframe:
                marks[0], marks[1] = e.open_ms, e.close_ms

    core = SessionCore.open(new_started, card, sink)
    view = ReconcileView(started.instrument.symbol, core.state.account, fork_to)
    core.step(new_started)
    for _, raw in store.stream(session).read(2):
        event = decode(raw)
        if type(event) not in _DERIVED:
            core.step(event)
    last = writer.append_many(buf)[-1]
    return Resumed(
        session=fork_to,
        core=core,
        view=view,
        last_seq=last,
        last_candle_open=marks[0],
        last_candle_close=marks[1],
        writer=writer,
        forked_from=origin,
    )


__all__ = ["ResumeRefused", "Resumed", "fork", "resume"]
