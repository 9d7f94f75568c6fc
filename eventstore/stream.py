"""One named stream: read ranges, follow the tail, verify the chain, small metadata.

Reads go in chunks of ``CHUNK`` records, each chunk in its own short read
transaction: a slow consumer then never pins old pages (which would make the file
grow under a busy writer), and no transaction is open while the caller holds a
record. Records are returned as ``bytes`` copies, valid for ever.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from itertools import count, islice
from typing import TYPE_CHECKING, Final

import lmdb
import msgspec

from eventstore.chain import LINK, ChainState
from eventstore.env import SharedEnv, translated
from eventstore.errors import LogCorruptError
from eventstore.layout import StreamRecord, decode_record, encode_record, pack_key, unpack_key
from eventstore.lock import writer_alive
from eventstore.writer import DEFAULT_BATCH, Writer

if TYPE_CHECKING:
    from pathlib import Path

CHUNK: Final = 8192


class StreamInfo(msgspec.Struct, frozen=True):
    """A stream as listed by ``EventStore.streams()``."""

    name: str
    kind: str
    created_ms: int
    last_seq: int
    fingerprint: str
    meta: dict[str, str]


def info_of(record: StreamRecord) -> StreamInfo:
    return StreamInfo(
        name=record.name,
        kind=record.kind,
        created_ms=record.created_ms,
        last_seq=record.last_seq,
        fingerprint=record.fingerprint,
        meta=dict(record.meta),
    )


class Stream:
    """A handle on one stream; cheap, stateless (every call reads the current state)."""

    def __init__(self, shared: SharedEnv, record: StreamRecord, lock_dir: Path) -> None:
        self._shared = shared
        self.name, self.id, self.kind = record.name, record.id, record.kind
        self._key = record.name.encode()
        self.lock_path = lock_dir / f"stream-{record.id}.lock"

    def __repr__(self) -> str:
        return f"Stream({self.name!r}, id={self.id}, kind={self.kind!r})"

    # ------------------------------------------------------------------ metadata

    def _record(self, txn: lmdb.Transaction[bytes]) -> StreamRecord:
        raw = txn.get(self._key, db=self._shared.streams)
        if raw is None:
            raise LogCorruptError(str(self._shared.path), f"stream {self.name!r} vanished")
        try:
            record = decode_record(bytes(raw))
        except msgspec.MsgspecError as exc:
            raise LogCorruptError(
                str(self._shared.path), f"record of stream {self.name!r} does not decode: {exc}"
            ) from exc
        if record.id != self.id:
            raise LogCorruptError(str(self._shared.path), f"stream {self.name!r} changed id")
        return record

    def info(self) -> StreamInfo:
        shared = self._shared
        with translated(shared.path, f"read stream {self.name!r}"), shared.begin() as txn:
            return info_of(self._record(txn))

    @property
    def last_seq(self) -> int:
        """The last committed seq (0 for an empty stream)."""
        return self.info().last_seq

    @property
    def fingerprint(self) -> str:
        """Hex chain head after the last committed record, as kept in metadata."""
        return self.info().fingerprint

    @property
    def meta(self) -> dict[str, str]:
        return self.info().meta

    def set_meta(self, key: str, value: str) -> None:
        """Set one metadata entry (e.g. ``status`` = ``complete``); committed and synced."""
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError("stream metadata keys and values are str")

        def put(txn: lmdb.Transaction[bytes]) -> None:
            record = self._record(txn)
            meta = {**record.meta, key: value}
            updated = msgspec.structs.replace(record, meta=meta)
            txn.put(self._key, encode_record(updated), db=self._shared.streams)

        self._shared.write(put, f"set metadata of {self.name!r}")

    # ------------------------------------------------------------------- writing

    def has_writer(self) -> bool:
        """Whether a live process holds this stream's writer (a dead one's lock is gone)."""
        return writer_alive(self.lock_path)

    def writer(self, durable: bool, *, batch: int = DEFAULT_BATCH) -> Writer:
        """The stream's single writer; raises WriterLocked if another one is open."""
        return Writer(self, durable, batch)

    # ------------------------------------------------------------------- reading

    def _values(self, txn: lmdb.Transaction[bytes], first: int, last: int) -> list[bytes]:
        """Records ``first..last`` (which must exist) inside ``txn``, checked to be dense."""
        n = last - first + 1
        if n <= 0:
            return []
        cur = txn.cursor(db=self._shared.records)
        if not cur.set_key(pack_key(self.id, first)):
            raise LogCorruptError(str(self._shared.path), f"{self.name}: record missing", first)
        values = list(islice(cur.iternext(keys=False), n))
        if len(values) != n or cur.key() != pack_key(self.id, last):
            raise LogCorruptError(
                str(self._shared.path), f"{self.name}: records {first}..{last} are not dense", first
            )
        return values

    def _chunk(self, first: int, last: int | None) -> list[bytes]:
        """Up to CHUNK records from ``first`` (to ``last`` or the tail) in one read txn."""
        shared = self._shared
        with translated(shared.path, f"read {self.name!r}", seq=first), shared.begin() as txn:
            end = self._record(txn).last_seq
            if last is not None and last < end:
                end = last
            return self._values(txn, first, min(end, first + CHUNK - 1))

    def read(self, first: int = 1, last: int | None = None) -> Iterator[tuple[int, bytes]]:
        """``(seq, bytes)`` for seqs ``first..last`` in order (``last`` None: up to the
        tail as it is when reading starts; past the tail: stops at the tail)."""
        if first < 1:
            raise ValueError(f"seqs start at 1, not {first}")
        if last is None:
            last = self.last_seq
        seq = first
        while seq <= last:
            values = self._chunk(seq, last)
            if not values:
                return
            yield from zip(count(seq), values)
            seq += len(values)

    def follow(
        self,
        first: int = 1,
        *,
        poll_s: float = 0.01,
        stop: Callable[[], bool] | None = None,
    ) -> Iterator[tuple[int, bytes]]:
        """Every record from ``first`` on, waiting for new ones as other processes append.

        Polls a fresh read transaction every ``poll_s`` seconds while caught up. When
        caught up it asks ``stop()``; if true, it yields what was committed until then
        and returns (so a writer can commit, then signal stop, and nothing is lost).
        """
        if first < 1:
            raise ValueError(f"seqs start at 1, not {first}")
        seq = first
        while True:
            values = self._chunk(seq, None)
            if values:
                yield from zip(count(seq), values)
                seq += len(values)
                continue
            if stop is not None and stop():
                # Records committed between the empty read and stop() turning true.
                while values := self._chunk(seq, None):
                    yield from zip(count(seq), values)
                    seq += len(values)
                return
            time.sleep(poll_s)

    async def afollow(
        self,
        first: int = 1,
        *,
        poll_s: float = 0.01,
        stop: Callable[[], bool] | None = None,
    ) -> AsyncIterator[tuple[int, bytes]]:
        """``follow`` for asyncio: sleeps with ``asyncio.sleep`` and yields to the loop
        between chunks (a chunk read is short and done inline)."""
        import asyncio  # here: a backtest never follows, and asyncio (with ssl) costs 15 ms

        if first < 1:
            raise ValueError(f"seqs start at 1, not {first}")
        seq = first
        while True:
            values = self._chunk(seq, None)
            if values:
                for item in zip(count(seq), values):
                    yield item
                seq += len(values)
                await asyncio.sleep(0)
                continue
            if stop is not None and stop():
                while values := self._chunk(seq, None):
                    for item in zip(count(seq), values):
                        yield item
                    seq += len(values)
                return
            await asyncio.sleep(poll_s)

    # ---------------------------------------------------------------- the chain

    def verify_chain(self) -> str:
        """Recompute the chain over every record; return the fingerprint (hex).

        Raises LogCorruptError naming the first seq of the first link whose records do
        not hash to the stored link digest, or if the head differs from the metadata.
        """
        shared, path = self._shared, str(self._shared.path)
        with translated(path, f"verify {self.name!r}"), shared.begin() as txn:
            record = self._record(txn)
        state = ChainState()
        seq = 1
        while seq <= record.last_seq:
            values = self._chunk(seq, record.last_seq)
            state, links = state.advance(values)
            stored = self._links(links[0][0], links[-1][0]) if links else {}
            for link_last, digest in links:
                if stored.get(link_last) != digest:
                    first = link_last - LINK + 1
                    raise LogCorruptError(
                        path,
                        f"stream {self.name!r}: records {first}..{link_last} do not hash to "
                        "their stored chain link",
                        seq=first,
                    )
            seq += len(values)
        head = state.head().hex()
        if head != record.fingerprint:
            first = (record.last_seq - 1) // LINK * LINK + 1
            raise LogCorruptError(
                path,
                f"stream {self.name!r}: records {first}..{record.last_seq} do not hash to the "
                "fingerprint in the stream's metadata",
                seq=first if record.last_seq else None,
            )
        return head

    def _links(self, lo: int, hi: int) -> dict[int, bytes]:
        """Stored chain link digests with last seqs in ``lo..hi``, by last seq."""
        shared = self._shared
        out: dict[int, bytes] = {}
        end = pack_key(self.id, hi)
        with translated(shared.path, f"verify {self.name!r}", seq=lo), shared.begin() as txn:
            cur = txn.cursor(db=shared.chain)
            if cur.set_range(pack_key(self.id, lo)):
                for key, value in cur:
                    if key > end:
                        break
                    out[unpack_key(key)[1]] = value
        return out
