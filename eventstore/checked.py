"""Chain checks for readers, remembered while the store is unchanged.

``verify_chain`` re-hashes a whole stream (about a million records a second), too
much to repeat on every ``sessions``/``report``/``inspect`` of a big store. So a
stream that passed is remembered in ``chain-checked.json`` next to the data file,
keyed by stream id with its last seq and fingerprint, under a *stamp* of the whole
file: its inode, size, mtime (ns) and LMDB's last committed transaction id. Any
commit to the file (an append, a metadata change, a record rewritten through lmdb by
hand) moves the transaction id, so the stamp differs and every stream is hashed
again; only a file untouched since the check is served from the remembered result.
The stamp is taken before hashing, so a commit during a check also invalidates it.

The file is a cache, not a proof: it says what this code found, best effort (a
read-only store just re-hashes every time).
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import TYPE_CHECKING, Final

import msgspec

from eventstore.env import translated

if TYPE_CHECKING:
    from eventstore.store import EventStore

CACHE_FILE: Final = "chain-checked.json"


class ChainCheck(msgspec.Struct, frozen=True):
    """A stream whose chain is intact: its fingerprint, and whether the cache answered."""

    name: str
    last_seq: int
    fingerprint: str
    cached: bool


def _stamp(store: EventStore) -> dict[str, int]:
    shared = store.shared
    with translated(shared.path, "read the store's state"):
        txnid = int(shared.env.info()["last_txnid"])
    st = (store.path / "data.mdb").stat()
    return {"ino": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "txnid": txnid}


def _load(store: EventStore, stamp: dict[str, int]) -> dict[str, list[object]]:
    """The remembered streams, if the cache was written for exactly this ``stamp``."""
    try:
        saved = json.loads((store.path / CACHE_FILE).read_text())
        if isinstance(saved, dict) and saved.get("stamp") == stamp:
            streams = saved.get("streams")
            if isinstance(streams, dict):
                return streams
    except (OSError, ValueError):
        pass
    return {}


def _save(store: EventStore, stamp: dict[str, int], streams: dict[str, list[object]]) -> None:
    with contextlib.suppress(OSError):
        tmp = store.path / f".{CACHE_FILE}.{os.getpid()}"
        tmp.write_text(json.dumps({"stamp": stamp, "streams": streams}))
        os.replace(tmp, store.path / CACHE_FILE)


def check_stream(store: EventStore, name: str) -> ChainCheck:
    """Verify ``name``'s hash chain unless the unchanged store already passed it.

    Raises ``LogCorruptError`` (naming the damaged link) when the records do not hash
    to the stored chain, and ``StreamNotFound`` for an unknown name.
    """
    stamp = _stamp(store)
    stream = store.stream(name)
    info = stream.info()
    streams = _load(store, stamp)
    entry = [info.last_seq, info.fingerprint]
    if streams.get(str(stream.id)) == entry:
        return ChainCheck(name, info.last_seq, info.fingerprint, cached=True)
    fingerprint = stream.verify_chain()
    # The metadata read above and the one verify_chain read agree unless a writer
    # appended in between; remember only what verify_chain itself checked.
    after = stream.info()
    if after.fingerprint == fingerprint:
        streams[str(stream.id)] = [after.last_seq, fingerprint]
        _save(store, stamp, streams)
    return ChainCheck(name, after.last_seq, fingerprint, cached=False)
