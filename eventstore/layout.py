"""How the log sits in LMDB: named databases, key formats and the stream records.

* ``records``: key = u32 stream id + u64 seq (both big-endian, so LMDB's byte order
  is stream-then-seq order); value = the caller's bytes, untouched.
* ``chain``: same key format, at the last seq of each complete chain link; value =
  the link's digest (see ``eventstore.chain``).
* ``streams``: key = stream name (UTF-8); value = a MessagePack ``StreamRecord``.
* ``store``: ``format`` (the layout version) and ``next_id`` (stream ids are never
  reused, even if a stream were dropped).
"""

from __future__ import annotations

import struct
from typing import Final

import msgspec

FORMAT: Final = 1
RECORDS_DB: Final = b"records"
CHAIN_DB: Final = b"chain"
STREAMS_DB: Final = b"streams"
STORE_DB: Final = b"store"
FORMAT_KEY: Final = b"format"
NEXT_ID_KEY: Final = b"next_id"

MAX_STREAM_ID: Final = 2**32 - 1
MAX_NAME_BYTES: Final = 400  # LMDB's default maximum key size is 511 bytes

KEY: Final = struct.Struct(">IQ")
pack_key: Final = KEY.pack
unpack_key: Final = KEY.unpack
U32: Final = struct.Struct(">I")


class StreamRecord(msgspec.Struct, frozen=True, gc=False):
    """What the store keeps about one stream, updated in the same commit as its records."""

    id: int
    name: str
    kind: str
    created_ms: int
    last_seq: int
    fingerprint: str
    meta: dict[str, str] = {}


_encode: Final = msgspec.msgpack.Encoder().encode
_decode: Final = msgspec.msgpack.Decoder(StreamRecord).decode


def encode_record(record: StreamRecord) -> bytes:
    return _encode(record)


def decode_record(data: bytes) -> StreamRecord:
    """Decode a stream record; raises ``msgspec.ValidationError``/``DecodeError`` if damaged."""
    record = _decode(data)
    if not 0 < record.id <= MAX_STREAM_ID or record.last_seq < 0:
        raise msgspec.ValidationError(f"impossible id {record.id} or last_seq {record.last_seq}")
    return record
