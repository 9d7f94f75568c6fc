"""The session core: the one place a session is opened, stepped and refolded.

Backtest, demo, live, ``replay verify``, ``replay inspect --at`` and the daemon's resume
are drivers over this module; none of them calls ``engine.core.step`` or builds a
``SessionStarted`` or an engine state itself.

Opening
    ``session_started(card, spec, ...)`` builds a session's first event (every mode
    fills the same fields; the venue's settings, e.g. the simulator's, are stored in
    ``settings``). ``SessionCore.open(started, card=None)`` builds the strategy and the
    engine state from it: with no card, the card is rebuilt from the text, params and
    timeframe the log stored (``card_from_log``). ``SessionCore.restore(started, card,
    engine_bytes)`` does the same from an engine snapshot.

Stepping (what a live driver does per input)
    ``core.step(event) -> commands``: folds one INPUT through the engine, hands the
    input and every event derived from it to ``core.sink(event, derived)`` (the
    driver's append: one durable group for the daemon, a batch buffer for a backtest;
    read models are updated there too), and returns the commands among the derived
    events, which the driver then sends (the simulated venue answers at once, the real
    one later, through more inputs). Nothing is sent before the sink returned, so a
    command is always in the log before it reaches a venue.

Refolding (what a reader does with a log)
    ``refold(records, core=None, verify=..., until=..., observe=...)`` folds a stream of
    ``(seq, raw bytes)`` records. Inputs go through the engine; with ``verify=True`` the
    events it derives are compared byte for byte with the ones the log has right after
    the input, and the first difference is returned as a ``Divergence`` naming its seq
    (the log's extra event, a missing one, or a changed one). Without ``verify`` the
    logged derived events are skipped. ``observe(seq, event)`` sees every logged event
    (inputs and derived) in order, for read models. With no ``core``, the stream must
    start with ``SessionStarted`` and the session is opened from it; given a core (a
    restored snapshot), folding continues from that state.

A bulk or fast path (a backtest without per-event callbacks, say) builds on the same
pieces: ``SessionCore.open`` for the state, ``engine_step`` on ``core.state`` for each
input, and ``core.sink`` or its own batched append, keeping the log's order (an input,
then exactly its derived events).

``engine_code_hash()`` is a hash of the code whose rules derive events (``engine/`` and
the card compiler, ``replay/cards/``); snapshots carry it, and a resume trusts a
snapshot only when it matches (see ``replay.resume``).
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Final, Union

import msgspec

import engine
from engine.core import new_state, restore_state
from engine.core import step as engine_step
from engine.events import (
    COMMAND_TYPES,
    DERIVED_TYPES,
    AmendOrder,
    CancelOrder,
    Checkpoint,
    Event,
    EventBase,
    InstrumentSpec,
    SessionStarted,
    SubmitOrder,
    decode,
    encode,
    to_dict,
)
from engine.instrument import Instrument
from engine.state import EngineState
from replay import __version__
from replay.cards import LoadedCard, load_card_text
from replay.cards.source import logged_strategy, strategy_fields

Command = Union[SubmitOrder, AmendOrder, CancelOrder]
#: The driver's append: the input and the events derived from it, in that order.
Sink = Callable[[EventBase, list[Event]], None]
#: A reader's view of every logged event: its seq and the event.
Observer = Callable[[int, EventBase], None]

_DERIVED: Final = frozenset(DERIVED_TYPES)
_COMMANDS: Final = frozenset(COMMAND_TYPES)
_NO_COMMANDS: Final[tuple[Command, ...]] = ()

__all__ = [
    "Divergence",
    "Refolded",
    "SessionCore",
    "card_from_log",
    "engine_code_hash",
    "engine_step",
    "refold",
    "session_started",
]


def _no_sink(event: EventBase, derived: list[Event]) -> None:
    return None


def session_started(
    card: LoadedCard,
    spec: InstrumentSpec,
    *,
    session_id: str,
    mode: str,
    venue: str,
    ts: int,
    initial_balance: int,
    settings: dict[str, str] | None = None,
) -> SessionStarted:
    """A session's first event, the same fields for every mode.

    The simulated venue's settings (the card's ``sim:``) are stored for ``venue="sim"``;
    ``settings`` adds driver notes (a fork's origin, say).
    """
    stored: dict[str, str] = {}
    if venue == "sim":
        stored["sim"] = msgspec.json.encode(card.sim_config).decode()
    stored.update(settings or {})
    return SessionStarted(
        ts=ts,
        session_id=session_id,
        mode=mode,
        card_text=card.text,
        card_hash=card.hash,
        venue=venue,
        instrument=spec,
        version=__version__,
        initial_balance=initial_balance,
        card_path=card.source,
        timeframe=card.timeframe,
        settings=stored,
        params=dict(card.params),
        **strategy_fields(card),
    )


def card_from_log(started: SessionStarted, source: str | None = None) -> LoadedCard:
    """The card a session ran, rebuilt from what its ``SessionStarted`` stored (a Python
    strategy from its logged source, when ``replay.cards.source`` allows it)."""
    with logged_strategy(started):
        return load_card_text(
            started.card_text,
            source=source if source is not None else (started.card_path or "<log>"),
            params=started.params,
            timeframe=started.timeframe or None,
        )


class SessionCore:
    """One session's engine: its first event, card, instrument, state and append."""

    __slots__ = ("card", "instrument", "sink", "started", "state")

    def __init__(
        self,
        started: SessionStarted,
        card: LoadedCard,
        state: EngineState,
        sink: Sink | None = None,
    ) -> None:
        self.started = started
        self.card = card
        self.instrument = Instrument(started.instrument)
        self.state = state
        self.sink: Sink = sink or _no_sink

    @classmethod
    def open(
        cls,
        started: SessionStarted,
        card: LoadedCard | None = None,
        sink: Sink | None = None,
        *,
        source: str | None = None,
    ) -> SessionCore:
        """A fresh session: the engine state ``started`` describes, the card's strategy."""
        card = card if card is not None else card_from_log(started, source)
        strategy = card.new_strategy(Instrument(started.instrument))
        return cls(started, card, new_state(started, strategy, card.engine_config), sink)

    @classmethod
    def restore(
        cls,
        started: SessionStarted,
        card: LoadedCard,
        engine_bytes: bytes,
        sink: Sink | None = None,
    ) -> SessionCore:
        """The session as an engine snapshot (``engine.core.snapshot_state``) left it."""
        strategy = card.new_strategy(Instrument(started.instrument))
        return cls(started, card, restore_state(engine_bytes, strategy), sink)

    def batched(
        self, append: Callable[[bytes], None], observe: Callable[[EventBase], None]
    ) -> Callable[..., Sequence[Command]]:
        """``step`` for a batching driver (a backtest), one call per input: the sink is
        fixed to "encode, ``append`` the bytes, ``observe`` the event" and inlined.
        ``step(event, raw)`` takes the input's bytes when the driver encoded them already
        (``replay.fastpath``: the same bytes, encoded in bulk)."""
        state, enc = self.state, encode

        def step(event: EventBase, raw: bytes | None = None) -> Sequence[Command]:
            append(enc(event) if raw is None else raw)
            observe(event)
            derived = engine_step(state, event)  # type: ignore[arg-type]
            if not derived:
                return _NO_COMMANDS
            commands: list[Command] = []
            for d in derived:
                append(enc(d))
                observe(d)
                if type(d) in _COMMANDS:
                    commands.append(d)  # type: ignore[arg-type]
            return commands

        return step

    def step(self, event: EventBase) -> Sequence[Command]:
        """Fold one input, hand it and its derived events to the sink, return the commands."""
        derived = engine_step(self.state, event)  # type: ignore[arg-type]
        self.sink(event, derived)
        if not derived:
            return _NO_COMMANDS
        return [d for d in derived if type(d) in _COMMANDS]  # type: ignore[misc]


class Divergence(msgspec.Struct):
    """Where a log and this engine disagree: the seq, why, and both sides."""

    seq: int
    reason: str
    expected: dict[str, object] | None = None
    got: dict[str, object] | None = None


class Refolded(msgspec.Struct):
    """What a refold went through, and where it stopped if the log did not verify."""

    last_seq: int = 0
    events: int = 0
    inputs: int = 0
    derived: int = 0
    checkpoints: int = 0
    divergence: Divergence | None = None


def refold(
    records: Iterable[tuple[int, bytes | memoryview]],
    core: SessionCore | None = None,
    *,
    verify: bool = True,
    until: int | None = None,
    observe: Observer | None = None,
    source: str | None = None,
) -> tuple[SessionCore | None, Refolded]:
    """Fold logged records through the engine; see the module docstring.

    Stops after seq ``until`` (inclusive) when given, and at the first divergence.
    Returns the core (opened from the log's ``SessionStarted`` when none was given; None
    if the stream is empty or does not start a session) and what was folded.
    """
    result = Refolded()
    pending: deque[bytes] = deque()
    state = core.state if core is not None else None
    derived_types = _DERIVED
    for seq, raw in records:
        if until is not None and seq > until:
            break
        try:
            event = decode(raw)
        except msgspec.DecodeError as exc:
            result.divergence = Divergence(seq, f"undecodable event: {exc}")
            return core, result
        result.last_seq = seq
        result.events += 1
        if type(event) in derived_types:
            if verify:
                if not pending:
                    result.divergence = Divergence(
                        seq, "the log has an event the engine did not derive", got=to_dict(event)
                    )
                    return core, result
                expected = pending.popleft()
                if bytes(raw) != expected:
                    result.divergence = Divergence(
                        seq,
                        "derived event differs",
                        expected=to_dict(decode(expected)),
                        got=to_dict(event),
                    )
                    return core, result
            result.derived += 1
            if type(event) is Checkpoint:
                result.checkpoints += 1
            if observe is not None:
                observe(seq, event)
            continue
        if pending:
            result.divergence = Divergence(
                seq,
                "the engine derived an event the log does not have",
                expected=to_dict(decode(pending[0])),
                got=to_dict(event),
            )
            return core, result
        if state is None:
            if not isinstance(event, SessionStarted):
                result.divergence = Divergence(seq, "a session must begin with SessionStarted")
                return core, result
            core = SessionCore.open(event, source=source)
            state = core.state
        result.inputs += 1
        if observe is not None:
            observe(seq, event)
        derived = engine_step(state, event)
        if verify and derived:
            pending.extend(encode(d) for d in derived)
    if pending and until is None:
        result.divergence = Divergence(
            result.last_seq + 1,
            "the engine derived events after the log ends",
            expected=to_dict(decode(pending[0])),
        )
    return core, result


#: The code whose rules derive events: a change here may change what a log re-derives.
_ENGINE: Final = Path(engine.__file__).parent  # not this __file__: a compiled build lives elsewhere
_RULE_PACKAGES: Final = (_ENGINE, _ENGINE.parent / "replay" / "cards")


@cache
def engine_code_hash() -> str:
    """sha256 over the source of the engine and the card compiler (path and bytes)."""
    digest = hashlib.sha256()
    for root in _RULE_PACKAGES:
        for path in sorted(root.rglob("*.py")):
            digest.update(path.relative_to(root.parent).as_posix().encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()
