"""Streams kept in memory: the fingerprint an ``EventStore`` would give the same records.

A sweep's trial whose log is not kept needs only its fingerprint; writing it to LMDB
first (commits, syncs, a scratch file per trial) was a sixth of a trial's time.
``MemoryStore`` has the part of the store's interface a backtest writes through
(``create_stream``, ``Stream.writer``, ``append``/``append_many``, ``set_meta``,
``fingerprint``) and chains the records with ``eventstore.chain.ChainState``, the
writer's own rule, so the fingerprint is the one the same records get in a real store.
With ``keep=True`` it also keeps the records, for a caller to append them to a real
store elsewhere (``Stream.records``).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

from eventstore.chain import ChainState
from eventstore.errors import EventStoreError, StreamExists


class MemoryStream:
    """One stream: its chain state, kind, metadata and (if kept) its records."""

    def __init__(self, name: str, kind: str, meta: dict[str, str], keep: bool) -> None:
        self.name, self.kind = name, kind
        self.meta = dict(meta)
        self.records: list[bytes] | None = [] if keep else None
        self.chain = ChainState()
        self._writing = False

    @property
    def last_seq(self) -> int:
        return self.chain.seq

    @property
    def fingerprint(self) -> str:
        """Hex chain head after the last record, as ``Stream.fingerprint``."""
        return self.chain.head().hex()

    def set_meta(self, key: str, value: str) -> None:
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError("stream metadata keys and values are str")
        self.meta[key] = value

    def writer(self, durable: bool, *, batch: int = 0) -> MemoryWriter:
        """The stream's single writer (``durable`` and ``batch`` mean nothing here)."""
        if self._writing:
            raise EventStoreError(f"stream {self.name!r} already has a writer")
        self._writing = True
        return MemoryWriter(self)


class MemoryWriter:
    """Appends to a ``MemoryStream``: each call advances its chain at once."""

    def __init__(self, stream: MemoryStream) -> None:
        self.stream = stream
        self._open = True

    @property
    def last_seq(self) -> int:
        return self.stream.chain.seq

    def append(self, data: bytes) -> int:
        return self.append_many([data]).stop - 1

    def append_many(self, items: Sequence[bytes]) -> range:
        if not self._open:
            raise EventStoreError(f"writer of stream {self.stream.name!r} is closed")
        s = self.stream
        first = s.chain.seq + 1
        s.chain, _ = s.chain.advance(items)
        if s.records is not None:
            s.records.extend(items)
        return range(first, first + len(items))

    def flush(self) -> None:
        """Nothing to commit: every append is in the chain when it returns."""

    def close(self) -> None:
        if self._open:
            self._open = False
            self.stream._writing = False

    def __enter__(self) -> MemoryWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class MemoryStore:
    """Named ``MemoryStream`` s (``keep``: with their records); gone with the object."""

    def __init__(self, keep: bool = False) -> None:
        self.keep = keep
        self._streams: dict[str, MemoryStream] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._streams

    def create_stream(
        self, name: str, kind: str, meta: dict[str, str] | None = None
    ) -> MemoryStream:
        if name in self._streams:
            raise StreamExists(name, "<memory>")
        got = self._streams[name] = MemoryStream(name, kind, meta or {}, self.keep)
        return got

    def stream(self, name: str) -> MemoryStream:
        return self._streams[name]
