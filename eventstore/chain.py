"""The hash chain that gives a stream one fingerprint.

Records are hashed in *links* of ``LINK`` consecutive records, aligned on sequence
numbers (seqs 1..64, 65..128, ...)::

    link_k = blake2b-128(link_{k-1} || u32le lengths of its records || their bytes)
    link_0 = 16 zero bytes (the empty stream)

so every link covers the previous one and the exact bytes of its records. The
stream's fingerprint at seq ``n`` is the same formula applied to the (possibly
incomplete) last link, so it depends only on the records, never on how they were
batched into commits. Hashing a link costs one blake2b call per 64 records instead
of one per record, which keeps the chain cheap on the batched append path; the
price is that ``verify_chain`` locates damage to a link (it reports the link's
first seq and its range), not to a single record.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from hashlib import blake2b
from typing import Final

LINK: Final = 64
DIGEST_SIZE: Final = 16
GENESIS: Final = bytes(DIGEST_SIZE)

_LENGTHS: Final = {n: struct.Struct(f"<{n}I").pack for n in range(1, LINK + 1)}


def link_digest(prev: bytes, records: Sequence[bytes]) -> bytes:
    """Digest of one link: the previous link's digest, the records' lengths, their bytes."""
    h = blake2b(prev, digest_size=DIGEST_SIZE)
    if records:
        h.update(_LENGTHS[len(records)](*map(len, records)))
        h.update(b"".join(records))
    return h.digest()


def link_end(seq: int) -> int:
    """The last seq of the link that contains ``seq``."""
    return -(-seq // LINK) * LINK


class ChainState:
    """Where the chain stands after ``seq`` records: last complete link and the open tail.

    Immutable in use: ``advance`` returns a new state, so a failed commit leaves the
    writer's state as it was.
    """

    __slots__ = ("prev", "seq", "tail")

    def __init__(self, prev: bytes = GENESIS, tail: Sequence[bytes] = (), seq: int = 0) -> None:
        if len(tail) >= LINK or len(tail) != seq % LINK:
            raise ValueError(f"chain tail of {len(tail)} records does not fit seq {seq}")
        self.prev = prev
        self.tail = list(tail)
        self.seq = seq

    def head(self) -> bytes:
        """The fingerprint (digest) of the stream after ``self.seq`` records."""
        return link_digest(self.prev, self.tail) if self.tail else self.prev

    def advance(self, records: Sequence[bytes]) -> tuple[ChainState, list[tuple[int, bytes]]]:
        """Extend by ``records``; also return ``(last_seq, digest)`` of each link completed."""
        prev, seq, n, i = self.prev, self.seq, len(records), 0
        done: list[tuple[int, bytes]] = []
        if self.tail:
            need = LINK - len(self.tail)
            if n < need:
                return ChainState(prev, [*self.tail, *records], seq + n), done
            prev = link_digest(prev, [*self.tail, *records[:need]])
            seq += need
            i = need
            done.append((seq, prev))
        while n - i >= LINK:
            prev = link_digest(prev, records[i : i + LINK])
            seq += LINK
            i += LINK
            done.append((seq, prev))
        rest = records[i:]
        return ChainState(prev, rest, seq + len(rest)), done
