"""Appending to one stream: the single writer, batched or durable.

* **batched** (backtests): appends collect in memory and are committed ``batch`` at a
  time, and on ``flush``/``close``. A crash loses at most the uncommitted batch; what
  was committed is whole (LMDB commits are atomic) and on disk.
* **durable** (live): every ``append``, and every ``append_many`` as one group, is
  committed and synced before the call returns.

Records, chain links and the stream's ``last_seq``/fingerprint change in the same
LMDB transaction, so a reader or a reopened store never sees one without the other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import repeat
from types import TracebackType
from typing import TYPE_CHECKING, Final

import lmdb
import msgspec

from eventstore.chain import LINK, ChainState
from eventstore.env import release, translated
from eventstore.errors import EventStoreError, LogCorruptError
from eventstore.layout import decode_record, encode_record, pack_key
from eventstore.lock import WriterLock

if TYPE_CHECKING:
    from eventstore.stream import Stream

DEFAULT_BATCH: Final = 65_536


class Writer:
    """The one writer of a stream (a context manager); holds the stream's lock while open."""

    def __init__(self, stream: Stream, durable: bool, batch: int = DEFAULT_BATCH) -> None:
        if batch < 1:
            raise ValueError(f"batch must be >= 1, not {batch}")
        self.stream, self.durable = stream, durable
        self._batch = 1 if durable else batch
        self._shared = stream._shared
        if self._shared.readonly:
            raise EventStoreError(f"event store {self._shared.path} is open read-only")
        self._sid = stream.id
        self._name_key = stream.name.encode()
        self._pending: list[bytes] = []
        self._next: tuple[int, ChainState] | None = None  # staged, not yet committed
        self._failed: BaseException | None = None
        self._lock = WriterLock(stream.lock_path, stream.name)
        try:
            self._base, self._chain = self._load_state()
        except BaseException:
            self._lock.release()
            raise
        self._shared.refs += 1  # the environment stays open until this writer closes

    def _load_state(self) -> tuple[int, ChainState]:
        """Last committed seq and the chain's state there, checked against the fingerprint."""
        shared, sid = self._shared, self._sid
        with translated(shared.path, f"open writer of {self.stream.name!r}"), shared.begin() as txn:
            record = self.stream._record(txn)
            last = record.last_seq
            done = last - last % LINK
            prev = txn.get(pack_key(sid, done), db=shared.chain) if done else bytes(16)
            if prev is None:
                raise LogCorruptError(str(shared.path), "chain link is missing", seq=done)
            tail = self.stream._values(txn, done + 1, last)
        chain = ChainState(prev, tail, last)
        if chain.head().hex() != record.fingerprint:
            raise LogCorruptError(
                str(shared.path),
                f"stream {self.stream.name!r}: records {done + 1}..{last} do not match the "
                "fingerprint in its metadata",
                seq=done + 1,
            )
        return last, chain

    # ------------------------------------------------------------------ appending

    @property
    def last_seq(self) -> int:
        """The seq of the last record appended (committed or still pending)."""
        return self._base + len(self._pending)

    @property
    def committed_seq(self) -> int:
        """The seq of the last record committed (on disk)."""
        return self._base

    def append(self, data: bytes) -> int:
        """Append one record; return its seq. Durable mode: on disk when this returns."""
        if self._failed is not None:
            self._raise_failed()
        pending = self._pending
        pending.append(data)
        seq = self._base + len(pending)
        if len(pending) >= self._batch:
            self._commit()
        return seq

    def append_many(self, items: Sequence[bytes]) -> range:
        """Append records in order; return their seqs. Durable mode: one synced commit."""
        if self._failed is not None:
            self._raise_failed()
        first = self._base + len(self._pending) + 1
        self._pending.extend(items)
        if len(self._pending) >= self._batch:
            self._commit()
        return range(first, first + len(items))

    def flush(self) -> None:
        """Commit (and sync) everything appended so far."""
        if self._failed is not None:
            self._raise_failed()
        self._commit()

    def close(self) -> None:
        """Flush, then release the lock (always, even if the flush fails)."""
        try:
            if self._failed is None and self._lock.held:
                self._commit()
        finally:
            if self._lock.held:
                self._lock.release()
                release(self._shared)
            if self._failed is None:
                self._failed = EventStoreError(f"writer of stream {self.stream.name!r} is closed")

    def __enter__(self) -> Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ----------------------------------------------------------------- committing

    def _raise_failed(self) -> None:
        if not self._lock.held:
            raise EventStoreError(f"writer of stream {self.stream.name!r} is closed")
        raise EventStoreError(
            f"writer of stream {self.stream.name!r} failed earlier and is unusable: "
            f"{self._failed!r}"
        ) from self._failed

    def _commit(self) -> None:
        staged = self._stage()
        if staged is None:
            return
        try:
            self._shared.write(staged, f"append to {self.stream.name!r}", seq=self._base + 1)
        except BaseException as exc:
            self._failed = exc
            raise
        self._committed()

    def stage_many(self, items: Sequence[bytes]) -> range:
        """Add records without committing them (``eventstore.joint`` commits them together
        with another writer's); return their seqs."""
        if self._failed is not None:
            self._raise_failed()
        first = self._base + len(self._pending) + 1
        self._pending.extend(items)
        return range(first, first + len(items))

    def _stage(self) -> Callable[[lmdb.Transaction[bytes]], None] | None:
        """The put of everything pending (None if nothing is); ``_committed`` after it."""
        pending = self._pending
        if not pending:
            return None
        if self._failed is not None:
            self._raise_failed()
        if not self._lock.held:
            raise EventStoreError(f"writer of stream {self.stream.name!r} is closed")
        shared, sid, base, n = self._shared, self._sid, self._base, len(pending)
        first, last = base + 1, base + n
        chain, links = self._chain.advance(pending)
        self._next = (last, chain)
        first_key = pack_key(sid, first)
        link_items = [(pack_key(sid, s), d) for s, d in links]
        fingerprint = chain.head().hex()
        records_db, chain_db, streams_db = shared.records, shared.chain, shared.streams
        name_key, path = self._name_key, str(shared.path)

        def put(txn: lmdb.Transaction[bytes]) -> None:
            cur = txn.cursor(db=records_db)
            # MDB_APPEND is valid only if every new key sorts after the last key in the db
            # (true when this stream has the highest id among streams with records).
            append = not cur.last() or cur.key() < first_key
            items = zip(map(pack_key, repeat(sid, n), range(first, last + 1)), pending)
            _, added = cur.putmulti(items, append=append, overwrite=False)
            if added != n:
                raise LogCorruptError(path, f"records {first}..{last} already exist", seq=first)
            if link_items:
                txn.cursor(db=chain_db).putmulti(link_items, overwrite=False)
            raw = txn.get(name_key, db=streams_db)
            if raw is None:
                raise LogCorruptError(path, f"stream {self.stream.name!r} vanished", seq=first)
            try:
                record = decode_record(raw)
            except msgspec.MsgspecError as exc:
                raise LogCorruptError(path, f"stream record does not decode: {exc}") from exc
            if record.last_seq != base:
                raise EventStoreError(
                    f"stream {self.stream.name!r} moved from seq {base} to "
                    f"{record.last_seq} behind its writer's back"
                )
            updated = msgspec.structs.replace(record, last_seq=last, fingerprint=fingerprint)
            txn.put(name_key, encode_record(updated), db=streams_db)

        return put

    def _committed(self) -> None:
        assert self._next is not None
        (self._base, self._chain), self._next = self._next, None
        self._pending.clear()
