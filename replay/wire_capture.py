"""The session's wire log: the side stream ``<session>.wire`` (kind ``wire``).

``WireCapture`` owns the tap the venue records into (``adapters.bybit.wire.WireTap``) and the
side stream's writer. ``append(writer, events)`` is the daemon's one way to log: the events
go to the session's log and every pending wire record (frames received since the last
commit, and a ``Link`` for each event the adapter made) to the side stream, in ONE LMDB
transaction (``eventstore.joint``), so a kill -9 never leaves an event without its bytes and
capture adds no fsync. Frames that produced nothing ride along with the next commit; those
received after the last one are lost with the process (``verify --wire`` says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from adapters.bybit.wire import WireTap
from engine.events import EventBase, encode
from eventstore import EventStore, Writer
from eventstore.joint import append_together

KIND: Final = "wire"
#: the side writer never commits by itself: its records join the log's commits
_NEVER: Final = 1 << 62


def stream_name(session: str) -> str:
    return f"{session}.wire"


class WireCapture:
    """The tap and the side stream of one daemon run."""

    def __init__(self, enabled: bool = True) -> None:
        self.tap = WireTap(enabled=enabled)
        self.writer: Writer | None = None

    def attach(self, store: EventStore, session: str) -> None:
        """Open (or create) the side stream; call once the session's log exists."""
        if not self.tap.enabled:
            return
        name = stream_name(session)
        stream = store.stream(name) if name in store else store.create_stream(name, kind=KIND)
        self.writer = stream.writer(durable=False, batch=_NEVER)

    def append(self, writer: Writer, events: Sequence[EventBase]) -> range:
        """Log ``events`` (one durable group) with the wire records due with them."""
        items = [encode(e) for e in events]
        if self.writer is None:
            return writer.append_many(items)
        first = writer.last_seq + 1
        side = self.tap.take(list(events), range(first, first + len(items)))
        if not side:
            return writer.append_many(items)
        return append_together(writer, items, self.writer, side)

    def close(self) -> None:
        """Commit what is still pending (frames no event needed) and close the writer."""
        if self.writer is not None:
            self.writer.stage_many(self.tap.take([], range(0)))
            self.writer.close()
            self.writer = None
