"""`replay store salvage SRC DST`: what is intact in a damaged store is saved, bit for bit;
what is not is listed with the reason (issue 12 §2).

One store, four sessions, three kinds of damage: a zeroed leaf page inside session B's
records (reading it used to kill liblmdb), a rewritten record of session C (its chain no
longer matches), and a session F whose chain is whole but whose derived events its
engine would not make (appended through the API with one order's size changed).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import lmdb
import msgspec
import pytest

from engine.events import SubmitOrder, decode, encode
from eventstore import EventStore
from eventstore.layout import KEY, RECORDS_DB

REPO = Path(__file__).resolve().parents[1]
PAGE = 4096


def replay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from replay.cli import main; main()", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Sessions A, B, C of ``replay run`` and F, a forged copy of A."""
    store = tmp_path_factory.mktemp("salvage") / "store"
    for name in ("A", "B", "C"):
        done = replay("run", "--store", str(store), "--session", name, "--no-report", "-q",
                      "--candles", "3000", "--seed", str(ord(name)))  # fmt: skip
        assert done.returncode == 0, done.stderr
    with EventStore(store) as es:
        a = es.stream("A")
        forged = es.create_stream("F", kind=a.kind, meta=a.meta)
        changed = False
        with forged.writer(durable=True) as w:
            for _, raw in a.read():
                event = decode(raw)
                if not changed and isinstance(event, SubmitOrder):
                    raw = encode(msgspec.structs.replace(event, qty=event.qty + 1))
                    changed = True
                w.append_many([raw])
        prints = {s.name: s.fingerprint for s in es.streams()}
    return store, prints


def _stream_ids(store: Path) -> dict[str, int]:
    with EventStore(store) as es:
        return {s.name: es.stream(s.name).id for s in es.streams()}


def _leaf_of(data: Path, stream_id: int) -> int:
    """A leaf page of the records database whose first key belongs to ``stream_id``."""
    raw = data.read_bytes()
    found = []
    for n in range(2, len(raw) // PAGE):
        base = n * PAGE
        if not struct.unpack_from("=H", raw, base + 10)[0] & 2:  # P_LEAF
            continue
        ptr = struct.unpack_from("=H", raw, base + 16)[0]
        ksize = struct.unpack_from("=H", raw, base + ptr + 6)[0]
        if ksize != KEY.size:
            continue
        sid, seq = KEY.unpack_from(raw, base + ptr + 8)
        if sid == stream_id and seq > 1:
            found.append(n)
    assert found, f"no leaf page of stream {stream_id}"
    return found[len(found) // 2]


def test_intact_sessions_are_saved_bit_for_bit_and_the_rest_is_named(
    pristine: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    src = tmp_path / "damaged"
    shutil.copytree(pristine[0], src)
    ids = _stream_ids(src)
    # C: one record rewritten in place, through lmdb (the chain no longer matches).
    env = lmdb.open(str(src), max_dbs=8)
    records = env.open_db(RECORDS_DB)
    with env.begin(write=True) as txn:
        key = KEY.pack(ids["C"], 10)
        raw = bytearray(txn.get(key, db=records) or b"")
        raw[-1] ^= 1
        txn.put(key, bytes(raw), db=records)
    env.close()
    # B: a leaf page of its records zeroed on disk.
    data = src / "data.mdb"
    page = _leaf_of(data, ids["B"])
    with data.open("r+b") as f:
        f.seek(page * PAGE)
        f.write(bytes(PAGE))
    assert replay("sessions", "--store", str(src)).returncode == 3  # the store is refused

    dst = tmp_path / "saved"
    done = replay("store", "salvage", str(src), str(dst), "--json")
    assert done.returncode == 3, done.stderr  # something was lost
    assert "Traceback" not in done.stderr
    out = json.loads(done.stdout)
    assert sorted(out["saved"]) == ["A"]
    lost = {x["name"]: x["reason"] for x in out["lost"]}
    assert set(lost) == {"B", "C", "F"}
    assert "hash" in lost["C"]
    assert "does not verify" in lost["F"]
    with EventStore(dst) as es:
        assert {s.name: s.fingerprint for s in es.streams()} == {"A": pristine[1]["A"]}
    assert replay("verify", "A", "--store", str(dst)).returncode == 0
    assert replay("sessions", "--store", str(dst)).returncode == 0


def test_a_sound_store_is_saved_whole_and_a_bad_destination_is_refused(
    pristine: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    dst = tmp_path / "copy"
    done = replay("store", "salvage", str(pristine[0]), str(dst))
    assert done.returncode == 3  # F never verified, even in the pristine store
    assert "saved A" in done.stdout and "LOST  F" in done.stdout
    with EventStore(dst) as es:
        got = {s.name: s.fingerprint for s in es.streams()}
    assert got == {k: v for k, v in pristine[1].items() if k != "F"}
    again = replay("store", "salvage", str(pristine[0]), str(dst))
    assert again.returncode == 2 and "already holds a store" in again.stderr
    missing = replay("store", "salvage", str(tmp_path / "nothing"), str(tmp_path / "x"))
    assert missing.returncode == 2 and "no event store" in missing.stderr


def test_the_daemon_stops_on_a_damaged_log_instead_of_retrying(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reconciliation and the other retried jobs retry venue trouble, never a damaged log."""
    import asyncio

    from eventstore import LogCorruptError
    from replay.daemon import Daemon, DaemonOptions

    daemon = Daemon(DaemonOptions(card=tmp_path / "c.yaml", store=tmp_path, session="s"))

    async def venue_down() -> None:
        raise ConnectionError("venue unreachable")

    async def log_damaged() -> None:
        raise LogCorruptError(str(tmp_path), "page 7 is zeroed")

    monkeypatch.setattr("replay.daemon.RETRY_PAUSE_S", 0.0)
    assert asyncio.run(daemon._attempt("reconciliation", venue_down)) is False
    with pytest.raises(LogCorruptError, match="page 7"):
        asyncio.run(daemon._attempt("reconciliation", log_damaged))
