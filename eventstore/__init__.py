"""The LMDB event log: append, read ranges, follow the tail. Knows bytes, not trading.

One ``EventStore`` per directory holds many named streams (one per session). A
stream is a dense sequence of byte records numbered from 1, appended by a single
``Writer`` (batched or durable), readable while being written, and fingerprinted
by a hash chain. See the module docstrings of ``store``, ``writer``, ``stream`` and
``chain`` for the details and the reasons.
"""

from eventstore.chain import GENESIS, LINK
from eventstore.env import DEFAULT_MAP_SIZE
from eventstore.errors import (
    EventStoreError,
    LogCorruptError,
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
    "Stream",
    "StreamExists",
    "StreamInfo",
    "StreamNotFound",
    "Writer",
    "WriterLocked",
]
