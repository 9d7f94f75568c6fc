"""``EventStore``: one LMDB environment in a directory, holding many named streams."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import lmdb
import msgspec

from eventstore import env as envmod
from eventstore.chain import GENESIS
from eventstore.env import DEFAULT_MAP_SIZE, SharedEnv, translated
from eventstore.errors import EventStoreError, LogCorruptError, StreamExists, StreamNotFound
from eventstore.layout import (
    MAX_NAME_BYTES,
    MAX_STREAM_ID,
    NEXT_ID_KEY,
    U32,
    StreamRecord,
    decode_record,
    encode_record,
    pack_key,
    unpack_key,
)
from eventstore.lock import WriterLock
from eventstore.stream import Stream, StreamInfo, info_of


class EventStore:
    """The event log in ``path`` (created if missing unless ``readonly``).

    ``map_size`` is only the initial map: it doubles whenever a commit finds it full.
    ``full_check`` decides the structural check of the data file before LMDB maps it
    (see ``eventstore.filecheck``): True always walks every page, False only does the
    quick meta/size check, None (default) walks the pages unless the file is exactly as
    this code last checked or cleanly closed it (``eventstore.trust``), and skips checks
    while another process has the store open (a live file is LMDB's to keep). Opening also
    validates every stream's metadata against its records. Damage raises
    ``LogCorruptError``, never a raw lmdb error or a crash of the process.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        map_size: int = DEFAULT_MAP_SIZE,
        readonly: bool = False,
        full_check: bool | None = None,
    ) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._shared: SharedEnv | None = envmod.acquire(self.path, map_size, readonly, full_check)
        self._lock_dir = self.path / "locks"
        try:
            self._validate()
        except BaseException:
            self.close()
            raise

    # ---------------------------------------------------------------- lifecycle

    @property
    def shared(self) -> SharedEnv:
        if self._shared is None:
            raise EventStoreError(f"event store {self.path} is closed")
        return self._shared

    def close(self) -> None:
        """Release this handle; the environment closes with the process's last handle."""
        shared, self._shared = self._shared, None
        if shared is not None:
            envmod.release(shared)

    def __enter__(self) -> EventStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ----------------------------------------------------------------- streams

    def _records(self, txn: lmdb.Transaction[bytes] | None = None) -> list[StreamRecord]:
        """Every stream record, by id; read in ``txn`` when given (one consistent snapshot)."""
        if txn is None:
            with translated(self.shared.path, "list streams"), self.shared.begin() as own:
                return self._records(own)
        shared = self.shared
        out = []
        for key, raw in txn.cursor(db=shared.streams):
            try:
                record = decode_record(raw)
            except msgspec.MsgspecError as exc:
                raise LogCorruptError(
                    str(shared.path), f"stream record {key!r} does not decode: {exc}"
                ) from exc
            if record.name.encode() != key:
                raise LogCorruptError(
                    str(shared.path), f"stream record {key!r} names {record.name!r}"
                )
            out.append(record)
        out.sort(key=lambda r: r.id)
        return out

    def _validate(self) -> None:
        """Stream metadata must decode, ids be unique, and each last_seq be the last record."""
        shared = self.shared
        path = str(shared.path)
        # One read transaction for the records and the checks: a writer in another
        # process may append meanwhile, and two snapshots would disagree.
        with translated(path, "validate streams"), shared.begin() as txn:
            records = self._records(txn)
            next_id = U32.unpack(txn.get(NEXT_ID_KEY, db=shared.store) or bytes(4))[0]
            cur = txn.cursor(db=shared.records)
            seen: set[int] = set()
            for r in records:
                if r.id in seen or r.id >= next_id:
                    raise LogCorruptError(path, f"stream {r.name!r} has a bad id {r.id}")
                seen.add(r.id)
                if r.last_seq and not cur.set_key(pack_key(r.id, r.last_seq)):
                    raise LogCorruptError(
                        path, f"stream {r.name!r}: last record is missing", r.last_seq
                    )
                if (
                    cur.set_range(pack_key(r.id, r.last_seq + 1))
                    and unpack_key(cur.key())[0] == r.id
                ):
                    raise LogCorruptError(
                        path,
                        f"stream {r.name!r}: records past last_seq {r.last_seq}",
                        r.last_seq + 1,
                    )
                if r.last_seq == 0 and r.fingerprint != GENESIS.hex():
                    raise LogCorruptError(path, f"stream {r.name!r}: empty but fingerprinted")

    def create_stream(self, name: str, kind: str, meta: dict[str, str] | None = None) -> Stream:
        """A new, empty stream; raises StreamExists if the name is taken."""
        key = name.encode()
        if not name or len(key) > MAX_NAME_BYTES:
            raise ValueError(f"stream names are 1..{MAX_NAME_BYTES} UTF-8 bytes, not {name!r}")
        meta = dict(meta or {})
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
            raise TypeError("stream metadata keys and values are str")
        shared = self.shared

        def put(txn: lmdb.Transaction[bytes]) -> StreamRecord:
            if txn.get(key, db=shared.streams) is not None:
                raise StreamExists(name, str(shared.path))
            sid = U32.unpack(txn.get(NEXT_ID_KEY, db=shared.store) or bytes(4))[0]
            if sid == 0:
                raise LogCorruptError(str(shared.path), "store header next_id is damaged")
            if sid > MAX_STREAM_ID - 1:
                raise EventStoreError(f"{shared.path}: no stream ids left")
            record = StreamRecord(
                id=sid,
                name=name,
                kind=kind,
                created_ms=envmod.now_ms(),
                last_seq=0,
                fingerprint=GENESIS.hex(),
                meta=meta,
            )
            txn.put(NEXT_ID_KEY, U32.pack(sid + 1), db=shared.store)
            txn.put(key, encode_record(record), db=shared.streams)
            return record

        return Stream(shared, shared.write(put, f"create stream {name!r}"), self._lock_dir)

    def stream(self, name: str) -> Stream:
        """The existing stream ``name``; raises StreamNotFound."""
        shared = self.shared
        with translated(shared.path, f"open stream {name!r}"), shared.begin() as txn:
            raw = txn.get(name.encode(), db=shared.streams)
        if raw is None:
            raise StreamNotFound(name, str(shared.path))
        try:
            record = decode_record(raw)
        except msgspec.MsgspecError as exc:
            raise LogCorruptError(str(shared.path), f"stream {name!r} does not decode") from exc
        return Stream(shared, record, self._lock_dir)

    def delete_stream(self, name: str) -> int:
        """Delete stream ``name``: its records, chain links and metadata, in one commit.

        Returns how many records went. Raises StreamNotFound, or WriterLocked (naming the
        holder's pid) while a writer has the stream open: a running session is never
        deleted. The stream's id is not reused (``next_id`` only grows).
        """
        stream = self.stream(name)
        shared = self.shared
        lock = WriterLock(stream.lock_path, name)
        try:

            def drop(txn: lmdb.Transaction[bytes]) -> int:
                removed = 0
                for db in (shared.records, shared.chain):
                    cur = txn.cursor(db=db)
                    prefix = pack_key(stream.id, 0)[:4]
                    cur.set_range(prefix)
                    while cur.key()[:4] == prefix:  # b"" past the end
                        removed += db is shared.records
                        cur.delete()  # and move to the next key
                txn.delete(name.encode(), db=shared.streams)
                return removed

            removed = shared.write(drop, f"delete stream {name!r}")
            stream.lock_path.unlink(missing_ok=True)  # while locked: nobody else holds it
            return removed
        finally:
            lock.release()

    def __contains__(self, name: str) -> bool:
        shared = self.shared
        with translated(shared.path, "look up stream"), shared.begin() as txn:
            return txn.get(name.encode(), db=shared.streams) is not None

    def streams(self) -> list[StreamInfo]:
        """Every stream, in creation order."""
        return [info_of(r) for r in self._records()]
