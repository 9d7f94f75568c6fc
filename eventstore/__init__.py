"""The LMDB event log: append, read ranges, follow the tail. Knows bytes, not trading.

One ``EventStore`` per directory (one LMDB environment) holds many named streams,
one per session. A stream is a dense sequence of byte records numbered from 1,
never rewritten:

* one ``Writer`` per stream at a time, across processes (``WriterLocked`` names the
  holder's pid); batched (backtests, 65,536 records per commit) or durable (live:
  every append / append_many group committed and fsynced before it returns);
* ``read(first, last)`` in order, ``follow``/``afollow`` the tail another process
  appends; readers never block the writer; the map doubles when full;
* a blake2b hash chain gives each stream a fingerprint; ``verify_chain`` re-checks it;
* a damaged file raises ``LogCorruptError`` (checked before LMDB maps it), never a
  raw lmdb error or a crash.

Module map: ``store`` (EventStore), ``stream`` (Stream, reads), ``writer`` (Writer),
``chain`` (fingerprints), ``checked`` (chain checks for readers, cached), ``lock``
(single writer), ``memory`` (MemoryStore: a stream's chain and fingerprint without a
file, for runs whose log is not kept), ``env`` (the shared environment, lmdb error
translation), ``filecheck``/``trust`` (checks before mapping a file), ``layout`` (keys,
databases, stream records), ``errors``.
"""

import tools.compiled  # noqa: F401 (first: installs the REPLAY_COMPILED=1 hook, if set)
from eventstore.chain import GENESIS, LINK
from eventstore.env import DEFAULT_MAP_SIZE
from eventstore.errors import (
    EventStoreError,
    LogCorruptError,
    StoreReadOnly,
    StreamExists,
    StreamNotFound,
    WriterLocked,
)
from eventstore.store import EventStore
from eventstore.stream import Stream, StreamInfo
from eventstore.writer import DEFAULT_BATCH, Writer

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_MAP_SIZE",
    "GENESIS",
    "LINK",
    "EventStore",
    "EventStoreError",
    "LogCorruptError",
    "StoreReadOnly",
    "Stream",
    "StreamExists",
    "StreamInfo",
    "StreamNotFound",
    "Writer",
    "WriterLocked",
]
