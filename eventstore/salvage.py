"""Copy what is intact out of a damaged store: ``salvage(src, dst)``.

A damaged page can kill the process that reads it (see ``eventstore.walk``), so the
source is read by child processes (``python -m eventstore.salvage list|dump ...``)
straight through liblmdb, without the store's own checks (which refuse a damaged file
as a whole): one child lists the streams, one child per stream dumps its records. The
parent then keeps a stream only if its records are dense (1..last_seq) and hash to the
fingerprint its metadata names (``eventstore.chain``), and appends exactly those bytes
to a new stream of the same name, kind and metadata in ``dst`` — so a saved stream has
the same fingerprint as it had. Everything else is reported with the reason.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import msgspec

from eventstore.chain import ChainState
from eventstore.errors import EventStoreError, LogCorruptError
from eventstore.layout import RECORDS_DB, STREAMS_DB, decode_record, pack_key
from eventstore.store import EventStore
from eventstore.walk import TIMEOUT_S, run_child
from eventstore.walk import _open as open_readonly

_LEN: Final = struct.Struct("<I")
_CHUNK: Final = 4096


class SalvageRefused(EventStoreError):
    """Salvage cannot start: no store at the source, or one already at the destination."""


class Lost(msgspec.Struct, frozen=True):
    """A stream (or a stream record) that could not be saved, and why."""

    name: str
    reason: str
    kind: str = ""


class Salvaged(msgspec.Struct):
    """What ``salvage`` copied (stream name -> records) and what it could not."""

    saved: dict[str, int] = {}
    kinds: dict[str, str] = {}
    lost: list[Lost] = []


# ------------------------------------------------------------------- the children


def _list(path: Path) -> list[dict[str, Any]]:
    env = open_readonly(path)
    out: list[dict[str, Any]] = []
    with env.begin(buffers=False) as txn:
        streams = env.open_db(STREAMS_DB, txn=txn, create=False)
        for key, raw in txn.cursor(db=streams):
            name = key.decode("utf-8", "replace")
            try:
                r = decode_record(raw)
            except msgspec.MsgspecError as exc:
                out.append({"name": name, "error": f"its record does not decode: {exc}"})
                continue
            out.append(msgspec.to_builtins(r))
    return out


def _dump(path: Path, stream_id: int, last: int, out: Path) -> dict[str, Any]:
    env = open_readonly(path)
    n = 0
    with env.begin(buffers=False) as txn, out.open("wb") as fh:
        records = env.open_db(RECORDS_DB, txn=txn, create=False)
        cur = txn.cursor(db=records)
        for seq in range(1, last + 1):
            value = cur.get(pack_key(stream_id, seq))
            if value is None:
                return {"count": n, "missing": seq}
            fh.write(_LEN.pack(len(value)))
            fh.write(value)
            n += 1
    return {"count": n, "missing": None}


def main() -> None:
    what, path = sys.argv[1], Path(sys.argv[2])
    if what == "list":
        result: Any = _list(path)
    else:
        result = _dump(path, int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5]))
    sys.stdout.write(json.dumps(result) + "\n")


# ------------------------------------------------------------------- the parent


def _child(*args: str) -> tuple[Any, str]:
    """Run a child; returns (its JSON answer, "") or (None, why it gave none)."""
    proc = run_child(["-m", "eventstore.salvage", *args])
    if proc is None:
        return None, f"reading it did not finish within {TIMEOUT_S:.0f} s"
    if proc.returncode < 0:
        return None, f"reading it kills liblmdb ({signal.Signals(-proc.returncode).name})"
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return None, f"reading it failed: {tail}"
    return json.loads(proc.stdout), ""


def _records(dump: Path) -> Iterator[bytes]:
    with dump.open("rb") as fh:
        while head := fh.read(4):
            (n,) = _LEN.unpack(head)
            yield fh.read(n)


def _head(dump: Path) -> str:
    state = ChainState()
    chunk: list[bytes] = []
    for value in _records(dump):
        chunk.append(value)
        if len(chunk) == _CHUNK:
            state, _ = state.advance(chunk)
            chunk = []
    state, _ = state.advance(chunk)
    return state.head().hex()


def salvage(src: Path, dst: Path) -> Salvaged:
    """Copy every intact stream of ``src`` into the new store ``dst`` (which must not hold
    a store yet). Raises LogCorruptError when not even the list of streams can be read,
    SalvageRefused when it cannot start."""
    if (dst / "data.mdb").exists():
        raise SalvageRefused(f"{dst} already holds a store: salvage writes a new one")
    if not (src / "data.mdb").exists():
        raise SalvageRefused(f"no event store at {src}")
    listed, why = _child("list", os.fspath(src))
    if listed is None:
        raise LogCorruptError(str(src), f"the list of streams cannot be read: {why}")
    result = Salvaged()
    with EventStore(dst) as out, tempfile.TemporaryDirectory() as tmp:
        for entry in listed:
            name = entry["name"]
            if "error" in entry:
                result.lost.append(Lost(name, entry["error"]))
                continue
            kind, last = entry["kind"], int(entry["last_seq"])
            dump = Path(tmp) / "stream.bin"
            answer, why = _child("dump", os.fspath(src), str(entry["id"]), str(last), str(dump))
            if answer is None:
                result.lost.append(Lost(name, why, kind))
                continue
            if answer["missing"] is not None:
                result.lost.append(Lost(name, f"record {answer['missing']} is missing", kind))
                continue
            if _head(dump) != entry["fingerprint"]:
                result.lost.append(
                    Lost(name, "its records do not hash to its fingerprint (damaged)", kind)
                )
                continue
            stream = out.create_stream(name, kind=kind, meta=dict(entry["meta"]))
            with stream.writer(durable=False) as writer:
                batch: list[bytes] = []
                for value in _records(dump):
                    batch.append(value)
                    if len(batch) == _CHUNK:
                        writer.append_many(batch)
                        batch = []
                if batch:
                    writer.append_many(batch)
            if stream.fingerprint != entry["fingerprint"]:  # cannot happen: same bytes
                raise EventStoreError(f"{name}: the copy's fingerprint differs")
            result.saved[name] = last
            result.kinds[name] = kind
    return result


if __name__ == "__main__":
    main()
