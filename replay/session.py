"""The backtest session runner: candles in, a complete event log out.

Per candle, in this order (the order ``replay verify`` relies on):

1. ``venue.on_candle(candle)``: what happened at the venue *during* the candle
   (triggers, fills, funding, liquidation). Each venue event is an input.
2. The candle itself, an input: the strategy sees the closed bar.

Every input goes through the session core (``replay.core.SessionCore.step``): it is
folded, then it and the events derived from it are appended (and folded into the
``AccountView`` too, which counts refusals from them), and only then are the
commands among them sent to the simulated venue, whose answers are inputs in turn.
So in the log each input is followed by exactly the events derived from it, which is
what lets ``verify`` re-derive and compare a session event by event.

Appends are batched (backtests need speed, not per-event durability); the log is
synced when the session ends or is interrupted (SIGINT or SIGTERM: the run stops
after the current candle, appends ``SessionStopped`` and keeps every batch), and the
stream's metadata says whether it completed. A run killed outright leaves
``running`` behind, which ``replay.statuses`` reports as ``crashed``.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any, Final

import msgspec

from adapters.sim.venue import SimVenue
from engine.events import CandleClosed, EventBase, SessionStopped
from engine.instrument import Instrument
from eventstore import EventStore
from eventstore.memory import MemoryStore
from projections.account import AccountView
from replay.cards import LoadedCard
from replay.core import SessionCore, session_started

if TYPE_CHECKING:
    from replay.fastpath import BulkRun

BATCH: Final = 8192
_encoder: Final = msgspec.msgpack.Encoder()


class RunResult(msgspec.Struct):
    session_id: str
    events: int
    fingerprint: str
    status: str


class SessionInterrupted(Exception):
    """The user stopped a run (Ctrl-C or SIGTERM); the log holds everything up to there."""

    def __init__(self, session_id: str, events: int, how: str = "interrupted") -> None:
        super().__init__(f"session {session_id} {how} after {events} events")
        self.session_id = session_id
        self.events = events


class _StopSignals:
    """While a backtest folds, SIGINT and SIGTERM ask it to stop after the current candle.

    The loop checks ``signal`` once per candle, so the log never ends inside a
    candle's fold (``verify`` then agrees with it); a second signal raises
    ``KeyboardInterrupt`` at once (the session then reads as crashed). Installed on
    the main thread only (elsewhere Python cannot take signals).
    """

    def __init__(self) -> None:
        self.signal = 0
        self._previous: dict[int, Any] = {}

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.signal:
            raise KeyboardInterrupt
        self.signal = signum

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)


def run_backtest(
    card: LoadedCard,
    candles: Iterator[CandleClosed],
    instrument: Instrument,
    store: EventStore | MemoryStore,
    *,
    session_id: str,
    initial_balance: int,
    first_open_ms: int,
    meta: dict[str, str] | None = None,
    view: AccountView | None = None,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 10_000,
    bulk: BulkRun | None = None,
) -> RunResult:
    """Run ``card`` over ``candles`` into a new stream ``session_id`` of ``store`` (a
    ``MemoryStore``: the same fingerprint, nothing written).

    With ``bulk`` (``replay.fastpath``, for the same candles) the quiet stretches are
    folded in bulk; the log is byte for byte the one the candle loop writes."""
    started = session_started(
        card,
        instrument.spec,
        session_id=session_id,
        mode="backtest",
        venue="sim",
        ts=first_open_ms,
        initial_balance=initial_balance,
    )
    stream = store.create_stream(
        session_id,
        kind="backtest",
        meta={"status": "running", "card": card.source, **(meta or {})},
    )
    venue = SimVenue(instrument, card.sim_config, initial_balance, id_prefix="sim")
    folded = view if view is not None else AccountView()
    buf: list[bytes] = []
    core = SessionCore.open(started, card)
    core_step, on_command = core.batched(buf.append, folded.apply), venue.on_command
    count = 0
    last_ts = first_open_ms

    def feed(event: EventBase) -> None:
        """One input into the core; the simulated venue answers its commands at once."""
        for cmd in core_step(event):
            for answer in on_command(cmd):
                feed(answer)

    with stream.writer(durable=False) as writer:

        def flush() -> None:
            nonlocal count
            if buf:
                writer.append_many(buf)
                count += len(buf)
                buf.clear()

        feed(started)
        n = 0
        venue_candle = venue.on_candle

        def fold_candle(candle: CandleClosed, data: bytes | None = None) -> None:
            """One candle: what the venue did during it, then the closed bar (``data``: its
            log bytes when the fast path encoded them in bulk)."""
            for ev in venue_candle(candle):
                feed(ev)
            commands = core_step(candle, data)  # feed(candle), without a second call
            if commands:
                for cmd in commands:
                    for answer in on_command(cmd):
                        feed(answer)

        with _StopSignals() as stop:
            if bulk is not None:  # replay.fastpath: the same folds, quiet candles in bulk
                n, last_ts = bulk.run(
                    core.state,
                    venue,
                    folded,
                    buf,
                    fold_candle,
                    flush,
                    stop,
                    progress,
                    progress_every,
                )
            else:
                for candle in candles:
                    fold_candle(candle)
                    last_ts = candle.ts
                    if len(buf) >= BATCH:
                        flush()
                    n += 1
                    if progress is not None and n % progress_every == 0:
                        progress(n)
                    if stop.signal:
                        break
            if stop.signal:
                term = stop.signal == signal.SIGTERM
                feed(SessionStopped(ts=last_ts, reason="terminated" if term else "interrupted"))
                flush()
                stream.set_meta("status", "interrupted")
                how = "terminated (SIGTERM)" if term else "interrupted"
                raise SessionInterrupted(session_id, count, how)
        feed(SessionStopped(ts=last_ts, reason="completed"))
        flush()
    if progress is not None:
        progress(n)
    stream.set_meta("status", "complete")
    return RunResult(session_id, count, stream.fingerprint, "complete")
