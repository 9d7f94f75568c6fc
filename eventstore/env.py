"""One LMDB environment per store directory per process, plus the lmdb error translation.

LMDB forbids opening the same environment twice in one process (its locks belong
to the process), so every ``EventStore`` on a directory shares one ``SharedEnv``,
reference-counted. The environment is opened with LMDB's safe defaults (``sync``
and ``metasync``): every commit is on disk when it returns. Batched writers make
that cheap by committing rarely; durable writers rely on it.
"""

from __future__ import annotations

import contextlib
import os
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final, TypeVar

import lmdb
import msgspec

from eventstore import filecheck, trust
from eventstore.errors import EventStoreError, LogCorruptError, StoreReadOnly
from eventstore.layout import (
    CHAIN_DB,
    FORMAT,
    FORMAT_KEY,
    NEXT_ID_KEY,
    RECORDS_DB,
    STORE_DB,
    STREAMS_DB,
    U32,
)

REPUBLISH_KEY: Final = b"republished"
U64: Final = struct.Struct(">Q")

T = TypeVar("T")

DEFAULT_MAP_SIZE: Final = 1 << 30
#: lmdb errors that mean "the file is not what LMDB wrote".
#: (Looked up by name: older py-lmdb releases lack some of them.)
CORRUPTION_ERRORS: Final[tuple[type[lmdb.Error], ...]] = tuple(
    getattr(lmdb, name)
    for name in (
        "CorruptedError",
        "PageNotFoundError",
        "InvalidError",
        "VersionMismatchError",
        "PanicError",
        "BadValsizeError",
        "IncompatibleError",
        "BadChecksumError",
    )
    if hasattr(lmdb, name)
)


@contextlib.contextmanager
def translated(path: Path | str, what: str, seq: int | None = None) -> Iterator[None]:
    """Turn lmdb's errors into ours: corruption into LogCorruptError, the rest with context."""
    try:
        yield
    except CORRUPTION_ERRORS as exc:
        raise LogCorruptError(str(path), f"{what}: {exc}", seq) from exc
    except lmdb.Error as exc:
        raise EventStoreError(f"{path}: {what}: {exc}") from exc


class SharedEnv:
    """An open environment and its named databases, shared by every store on the path."""

    __slots__ = (
        "chain",
        "data_fd",
        "data_id",
        "data_name",
        "env",
        "path",
        "readonly",
        "records",
        "refs",
        "store",
        "streams",
    )

    def __init__(self, path: Path, map_size: int, readonly: bool, full_check: bool | None) -> None:
        self.path, self.readonly, self.refs = path, readonly, 0
        exists = filecheck.data_file(path).exists()
        if readonly and not exists:
            raise EventStoreError(f"no event store at {path}")
        if exists:
            check_file(path, full_check)
        else:
            path.mkdir(parents=True, exist_ok=True)
        with translated(path, "open"):
            try:
                self.env = self._open(map_size, readonly, lock=True)
            except lmdb.ReadonlyError:
                if not readonly:
                    raise
                # A read-only mount: no lock file can be made, and no writer can be there.
                self.env = self._open(map_size, readonly, lock=False)
        self.data_fd, self.data_id = -1, (0, 0)
        self.data_name = str(filecheck.data_file(path))
        try:
            self._open_dbs()
            self._hold_data_file()
        except BaseException:
            self.close()
            raise

    def _open(self, map_size: int, readonly: bool, lock: bool) -> lmdb.Environment:
        return lmdb.open(
            str(self.path),
            map_size=map_size,
            max_dbs=8,
            readonly=readonly,
            writemap=False,
            sync=True,
            metasync=True,
            max_readers=256,
            lock=lock,
        )

    def _open_dbs(self) -> None:
        with translated(self.path, "open databases"):
            if self.readonly:
                try:
                    self.records = self.env.open_db(RECORDS_DB, create=False)
                    self.chain = self.env.open_db(CHAIN_DB, create=False)
                    self.streams = self.env.open_db(STREAMS_DB, create=False)
                    self.store = self.env.open_db(STORE_DB, create=False)
                except lmdb.NotFoundError:
                    raise LogCorruptError(str(self.path), "a named database is missing") from None
            else:
                with self.env.begin(write=True) as txn:
                    self.records = self.env.open_db(RECORDS_DB, txn=txn)
                    self.chain = self.env.open_db(CHAIN_DB, txn=txn)
                    self.streams = self.env.open_db(STREAMS_DB, txn=txn)
                    self.store = self.env.open_db(STORE_DB, txn=txn)
                    if txn.get(FORMAT_KEY, db=self.store) is None:
                        txn.put(FORMAT_KEY, U32.pack(FORMAT), db=self.store)
                        txn.put(NEXT_ID_KEY, U32.pack(1), db=self.store)
            with self.env.begin() as txn:
                fmt = txn.get(FORMAT_KEY, db=self.store)
                next_id = txn.get(NEXT_ID_KEY, db=self.store)
        if fmt is None or len(fmt) != 4 or next_id is None or len(next_id) != 4:
            raise LogCorruptError(str(self.path), "store header (format, next_id) is damaged")
        if U32.unpack(fmt)[0] != FORMAT:
            raise EventStoreError(
                f"{self.path}: store format {U32.unpack(fmt)[0]}, this code reads {FORMAT}"
            )

    def begin(self, write: bool = False) -> lmdb.Transaction[bytes]:
        """A transaction (values as bytes); adopts a map another process grew meanwhile,
        and never returns a read transaction older than the newest commit on disk."""
        if write and self.readonly:
            raise EventStoreError(f"event store {self.path} is open read-only")
        self.check_intact()
        with translated(self.path, "begin a transaction"):
            txn = self._begin(write)
            if write or self.readonly:
                return txn
            newest = self.env.info()["last_txnid"]  # from the meta pages themselves
            if txn.id() >= newest:
                return txn
            txn.abort()
            txn = self._begin(False)
            if txn.id() >= newest:  # a commit was landing just then: nothing stale
                return txn
            # A writer was killed after writing its meta page but before publishing the
            # txnid in lock.mdb: LMDB readers would miss that (durable) commit until the
            # next one. Any commit republishes; make a tiny one, then read again.
            txn.abort()
            self.write(lambda t: t.put(REPUBLISH_KEY, U64.pack(t.id()), db=self.store), "republish")
            return self._begin(False)

    def check_intact(self) -> None:
        """The quick check (~10 us) before every transaction: a file truncated or with a
        meta page damaged since it was opened raises LogCorruptError here, before liblmdb
        touches a page that is gone (SIGBUS); so does a data file deleted. It reads a
        descriptor held open, after a ``stat`` of the name: a file replaced under us is
        re-opened and checked instead. Damage landing between this check and the read is
        not caught: a mapped file cannot be defended against that."""
        try:
            named = os.stat(self.data_name)
            if (named.st_dev, named.st_ino) != self.data_id:
                self._hold_data_file()
        except FileNotFoundError:
            raise LogCorruptError(self.data_name, "data file is gone") from None
        fd = self.data_fd
        _raise_problems(self.path, _settled(self.path, lambda _: filecheck.fd_problems(fd), True))

    def _hold_data_file(self) -> None:
        """Open (or re-open) the data file that ``check_intact`` reads."""
        fd = os.open(self.data_name, os.O_RDONLY | os.O_CLOEXEC)
        if self.data_fd >= 0:
            os.close(self.data_fd)
        held = os.fstat(fd)
        self.data_fd, self.data_id = fd, (held.st_dev, held.st_ino)

    def close(self) -> None:
        """Close the environment and the held data file descriptor."""
        if self.data_fd >= 0:
            os.close(self.data_fd)
            self.data_fd = -1
        self.env.close()

    def _begin(self, write: bool) -> lmdb.Transaction[bytes]:
        try:
            return self.env.begin(write=write)
        except lmdb.MapResizedError:
            self.env.set_mapsize(0)
            return self.env.begin(write=write)

    def write(
        self, fn: Callable[[lmdb.Transaction[bytes]], T], what: str, seq: int | None = None
    ) -> T:
        """Run ``fn`` in one write transaction and commit; grow the map and retry when full.

        ``fn`` must be safe to run again (it only reads and puts inside ``txn``).
        """
        while True:
            txn = self.begin(write=True)
            try:
                result = fn(txn)
                txn.commit()
                return result
            except lmdb.MapFullError:
                _abort(txn)
                self.grow()
            except CORRUPTION_ERRORS as exc:
                _abort(txn)
                raise LogCorruptError(str(self.path), f"{what}: {exc}", seq) from exc
            except lmdb.Error as exc:
                _abort(txn)
                raise EventStoreError(f"{self.path}: {what}: {exc}") from exc
            except BaseException:
                _abort(txn)
                raise

    def grow(self) -> None:
        """Double the map (called after MapFullError, with no transaction open)."""
        self.env.set_mapsize(self.env.info()["map_size"] * 2)


def _abort(txn: lmdb.Transaction[bytes]) -> None:
    """Abort, tolerating a transaction that a failed commit already ended."""
    with contextlib.suppress(lmdb.Error):
        txn.abort()


def _read_only_fs(path: Path) -> bool:
    """True when ``path`` (or its nearest existing parent) is on a read-only mount."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return bool(os.statvfs(probe).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def check_file(path: Path, full: bool | None) -> None:
    """Raise LogCorruptError if the data file fails the structural check: the full one
    (the page walk in a child process) if ``full``; with ``full`` None, the full one
    unless the file is in the state we last trusted (then the quick one). The check
    runs even while other processes have the store open: a file damaged under them
    must not crash this process too."""
    checked = trust.stamp(path)
    if full is None:
        full = not trust.is_trusted(path)
    check = filecheck.full_problems if full else filecheck.quick_problems
    problems = _settled(path, check, filecheck.open_elsewhere(path))
    _raise_problems(path, problems)
    if full:
        trust.record(path, checked)


def _settled(path: Path, check: Callable[[Path], list[str]], live: bool) -> list[str]:
    """``check(path)``; on a live file, problems must persist over a few tries to count
    (a commit of another process may have been read half-written)."""
    problems = check(path)
    for _ in range(3 if live and problems else 0):
        time.sleep(0.05)
        problems = check(path)
        if not problems:
            break
    return problems


def _raise_problems(path: Path, problems: list[str]) -> None:
    if problems:
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        raise LogCorruptError(str(filecheck.data_file(path)), "; ".join(problems[:3]) + more)


_OPEN: dict[Path, SharedEnv] = {}


def acquire(path: Path, map_size: int, readonly: bool, full_check: bool | None) -> SharedEnv:
    """The process's environment for ``path``, opened on first use."""
    key = path.resolve()
    if not readonly and _read_only_fs(key):
        raise StoreReadOnly(str(path))
    shared = _OPEN.get(key)
    if shared is None:
        shared = _OPEN[key] = SharedEnv(key, map_size, readonly, full_check)
    elif shared.readonly and not readonly:
        raise EventStoreError(f"{key} is already open read-only in this process")
    shared.refs += 1
    return shared


def release(shared: SharedEnv) -> None:
    shared.refs -= 1
    if shared.refs <= 0:
        _OPEN.pop(shared.path, None)
        shared.close()
        if not shared.readonly:
            trust.record(shared.path)  # our own clean writes need no re-check


def now_ms() -> int:
    """Wall clock for ``created_ms`` (the store is not the engine: the clock is fine here)."""
    return time.time_ns() // 1_000_000


def decode_error(path: Path, what: str, exc: msgspec.MsgspecError) -> LogCorruptError:
    return LogCorruptError(str(path), f"{what} does not decode: {exc}")
