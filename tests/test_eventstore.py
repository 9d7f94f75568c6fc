"""The LMDB event log, on real LMDB environments in temporary directories.

Cross-process behaviour (the writer lock, following the tail) is exercised with real
child processes that open the same store.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import lmdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstore import (
    GENESIS,
    LINK,
    EventStore,
    EventStoreError,
    LogCorruptError,
    StreamExists,
    StreamNotFound,
    WriterLocked,
)
from eventstore.layout import pack_key

REPO = Path(__file__).resolve().parents[1]

FIXTURES_OK = [HealthCheck.function_scoped_fixture]  # each example makes its own tmp dir
records = st.binary(min_size=0, max_size=300)
batches = st.lists(st.lists(records, max_size=40), max_size=12)


def child(code: str, *args: str) -> subprocess.Popen[str]:
    """A Python child process running ``code`` with the repository importable."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def write_all(path: Path, name: str, groups: list[list[bytes]], durable: bool, batch: int) -> None:
    with EventStore(path) as store:
        stream = store.stream(name) if name in store else store.create_stream(name, "test")
        with stream.writer(durable=durable, batch=batch) as w:
            for group in groups:
                if len(group) == 1:
                    assert w.append(group[0]) == w.last_seq
                else:
                    before = w.last_seq
                    seqs = w.append_many(group)
                    assert seqs == range(before + 1, before + 1 + len(group))


# ----------------------------------------------------------------- round trips


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(groups=batches, durable=st.booleans(), batch=st.integers(1, 50))
def test_batches_read_back_in_order_after_reopen(
    tmp_path_factory: pytest.TempPathFactory, groups: list[list[bytes]], durable: bool, batch: int
) -> None:
    path = tmp_path_factory.mktemp("store")
    write_all(path, "s", groups, durable, batch)
    expected = [r for g in groups for r in g]
    with EventStore(path) as store:
        got = list(store.stream("s").read())
        assert [data for _, data in got] == expected
        assert [seq for seq, _ in got] == list(range(1, len(expected) + 1))
        assert store.stream("s").last_seq == len(expected)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(groups=batches, split=st.integers(0, 12), batch=st.integers(1, 50))
def test_fingerprint_depends_on_records_not_on_batching_or_sessions(
    tmp_path_factory: pytest.TempPathFactory, groups: list[list[bytes]], split: int, batch: int
) -> None:
    """One session appending one record at a time, and two sessions with a reopen in
    between appending groups, give the same fingerprint; verify_chain recomputes it."""
    flat = [r for g in groups for r in g]
    a, b = tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b")
    write_all(a, "s", [[r] for r in flat], durable=False, batch=7)
    write_all(b, "s", groups[:split], durable=False, batch=batch)
    write_all(b, "s", groups[split:], durable=False, batch=batch)
    with EventStore(a) as sa, EventStore(b) as sb:
        fa, fb = sa.stream("s").fingerprint, sb.stream("s").fingerprint
        assert fa == fb
        assert sa.stream("s").verify_chain() == fa
        assert (fa == GENESIS.hex()) == (not flat)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(n=st.integers(0, 300), data=st.data())
def test_read_ranges(tmp_path_factory: pytest.TempPathFactory, n: int, data: st.DataObject) -> None:
    path = tmp_path_factory.mktemp("store")
    payload = [f"r{i}".encode() * (i % 5) for i in range(1, n + 1)]
    write_all(path, "s", [payload], durable=False, batch=64)
    first = data.draw(st.integers(1, n + 3))
    last = data.draw(st.none() | st.integers(0, n + 3))
    with EventStore(path) as store:
        got = list(store.stream("s").read(first, last))
    end = n if last is None else min(last, n)
    assert got == [(s, payload[s - 1]) for s in range(first, end + 1)]


def test_reads_cross_chunk_boundaries_and_streams_do_not_mix(tmp_path: Path) -> None:
    from eventstore.stream import CHUNK

    n = CHUNK * 2 + 7
    with EventStore(tmp_path) as store:
        a, b = store.create_stream("a", "t"), store.create_stream("b", "t")
        with a.writer(durable=False) as wa, b.writer(durable=False) as wb:
            for i in range(n):
                wa.append(b"a%d" % i)
                wb.append(b"b%d" % i)
        assert [d for _, d in a.read()] == [b"a%d" % i for i in range(n)]
        assert list(b.read(CHUNK - 1, CHUNK + 1)) == [
            (CHUNK - 1, b"b%d" % (CHUNK - 2)),
            (CHUNK, b"b%d" % (CHUNK - 1)),
            (CHUNK + 1, b"b%d" % CHUNK),
        ]
        # The older stream keeps growing after the newer one (no MDB_APPEND fast path).
        with a.writer(durable=True) as wa:
            assert wa.append(b"late") == n + 1
        assert list(a.read(n)) == [(n, b"a%d" % (n - 1)), (n + 1, b"late")]
        assert b.last_seq == n
        assert a.verify_chain() == a.fingerprint


def test_seqs_are_never_reused_across_writers_and_reopen(tmp_path: Path) -> None:
    with EventStore(tmp_path) as store:
        s = store.create_stream("s", "t")
        with s.writer(durable=False, batch=3) as w:
            assert w.append_many([b"1", b"2"]) == range(1, 3)
            assert w.committed_seq == 0  # still pending in batched mode
        with s.writer(durable=True) as w:
            assert w.append(b"3") == 3
            assert w.committed_seq == 3
            assert w.append_many([]) == range(4, 4)
    with EventStore(tmp_path) as store, store.stream("s").writer(durable=False) as w:
        assert w.append(b"4") == 4


def test_read_rejects_seq_zero(tmp_path: Path) -> None:
    with EventStore(tmp_path) as store:
        s = store.create_stream("s", "t")
        with pytest.raises(ValueError):
            list(s.read(0))


# ----------------------------------------------------------- metadata, listing


def test_create_list_and_update_metadata(tmp_path: Path) -> None:
    before = int(time.time() * 1000)
    with EventStore(tmp_path) as store:
        store.create_stream("bt-1", "backtest", {"card": "ema.yml"})
        live = store.create_stream("live-1", "live")
        with pytest.raises(StreamExists, match="live-1"):
            store.create_stream("live-1", "live")
        with live.writer(durable=True) as w:
            w.append_many([b"x", b"y"])
        live.set_meta("status", "interrupted")
        live.set_meta("status", "complete")
    after = int(time.time() * 1000)
    with EventStore(tmp_path) as store:
        infos = store.streams()
        assert [i.name for i in infos] == ["bt-1", "live-1"]
        bt, lv = infos
        assert (bt.kind, bt.last_seq, bt.meta, bt.fingerprint) == (
            "backtest",
            0,
            {"card": "ema.yml"},
            GENESIS.hex(),
        )
        assert (lv.kind, lv.last_seq, lv.meta) == ("live", 2, {"status": "complete"})
        assert lv.fingerprint == store.stream("live-1").verify_chain() != GENESIS.hex()
        assert before <= bt.created_ms <= lv.created_ms <= after
        assert "bt-1" in store and "nope" not in store
        with pytest.raises(StreamNotFound, match="nope"):
            store.stream("nope")


def test_set_meta_while_writing_keeps_both(tmp_path: Path) -> None:
    with EventStore(tmp_path) as store:
        s = store.create_stream("s", "t")
        with s.writer(durable=False, batch=2) as w:
            w.append_many([b"a", b"b"])
            s.set_meta("status", "running")
            w.append_many([b"c", b"d"])
        info = s.info()
        assert (info.last_seq, info.meta) == (4, {"status": "running"})


def test_readonly_store_reads_but_refuses_writes(tmp_path: Path) -> None:
    write_all(tmp_path, "s", [[b"a", b"b"]], durable=True, batch=1)
    with EventStore(tmp_path, readonly=True) as store:
        assert [d for _, d in store.stream("s").read()] == [b"a", b"b"]
        with pytest.raises(EventStoreError, match="read-only"):
            store.create_stream("t", "t")
        with pytest.raises(EventStoreError, match="read-only"):
            store.stream("s").writer(durable=True)
    with pytest.raises(EventStoreError, match="no event store"):
        EventStore(tmp_path / "missing", readonly=True)


def test_two_handles_in_one_process_share_the_environment(tmp_path: Path) -> None:
    with EventStore(tmp_path) as one, EventStore(tmp_path) as two:
        s = one.create_stream("s", "t")
        with s.writer(durable=True) as w:
            w.append(b"seen by the other handle")
        assert list(two.stream("s").read()) == [(1, b"seen by the other handle")]
    with EventStore(tmp_path) as again:  # reopened after both closed
        assert again.stream("s").last_seq == 1


# ------------------------------------------------------------------- map growth


def test_map_grows_past_a_tiny_initial_size(tmp_path: Path) -> None:
    initial = 64 * 1024
    payload = [bytes([i % 251]) * (100 + i % 900) for i in range(6000)]  # ~3 MB
    with EventStore(tmp_path, map_size=initial) as store:
        s = store.create_stream("s", "t")
        with s.writer(durable=False, batch=500) as w:
            w.append_many(payload[:3000])
            for p in payload[3000:]:
                w.append(p)
        assert store.shared.env.info()["map_size"] > 40 * initial
    with EventStore(tmp_path, map_size=initial) as store:
        assert [d for _, d in store.stream("s").read()] == payload
        store.stream("s").verify_chain()


# ---------------------------------------------------------------- single writer


def test_second_writer_in_same_process_is_refused_with_pid(tmp_path: Path) -> None:
    with EventStore(tmp_path) as store:
        s = store.create_stream("s", "t")
        with s.writer(durable=False) as w:
            w.append(b"a")
            with pytest.raises(WriterLocked) as err:
                s.writer(durable=True)
            assert err.value.pid == os.getpid()
            assert str(os.getpid()) in str(err.value)
            with pytest.raises(WriterLocked):
                store.stream("s").writer(durable=False)
        with s.writer(durable=True) as w2:  # released on close
            assert w2.append(b"b") == 2
        with pytest.raises(EventStoreError, match="closed"):
            w.append(b"after close")


HOLD_WRITER = """
    import sys
    from eventstore import EventStore
    with EventStore(sys.argv[1]) as store:
        s = store.stream("s") if "s" in store else store.create_stream("s", "t")
        with s.writer(durable=True) as w:
            w.append(b"child")
            print("holding", flush=True)
            sys.stdin.readline()
"""


def test_second_writer_in_another_process_is_refused_with_its_pid(tmp_path: Path) -> None:
    proc = child(HOLD_WRITER, str(tmp_path))
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
        with EventStore(tmp_path) as store:
            with pytest.raises(WriterLocked) as err:
                store.stream("s").writer(durable=False)
            assert err.value.pid == proc.pid
            assert f"process {proc.pid}" in str(err.value)
            proc.kill()  # the kernel drops the lock with the process
            proc.wait(10)
            with store.stream("s").writer(durable=True) as w:
                assert w.append(b"parent") == 2
    finally:
        proc.kill()
        proc.communicate()


# --------------------------------------------------------------- following


APPENDER = """
    import sys, time
    from eventstore import EventStore
    n, pause = int(sys.argv[2]), float(sys.argv[3])
    with EventStore(sys.argv[1]) as store:
        s = store.stream("s")
        with s.writer(durable=True) as w:
            seq = 0
            while seq < n:
                k = min(1 + seq % 7, n - seq)
                w.append_many([b"event %d" % i for i in range(seq + 1, seq + k + 1)])
                seq += k
                time.sleep(pause)
        s.set_meta("status", "complete")
"""


def test_follow_sees_every_event_once_in_order_while_another_process_appends(
    tmp_path: Path,
) -> None:
    n = 400
    with EventStore(tmp_path) as store:
        s = store.create_stream("s", "live")
        proc = child(APPENDER, str(tmp_path), str(n), "0.001")
        got = list(
            s.follow(1, poll_s=0.002, stop=lambda: proc.poll() is not None or s.last_seq >= n)
        )
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert got == [(i, b"event %d" % i) for i in range(1, n + 1)]


def test_afollow_from_the_middle_while_another_process_appends(tmp_path: Path) -> None:
    n = 200
    with EventStore(tmp_path) as store:
        s = store.create_stream("s", "live")
        proc = child(APPENDER, str(tmp_path), str(n), "0.002")

        async def collect() -> list[tuple[int, bytes]]:
            out = []

            def done() -> bool:
                return s.meta.get("status") == "complete" or proc.poll() is not None

            async for item in s.afollow(50, poll_s=0.002, stop=done):
                out.append(item)
            return out

        got = asyncio.run(collect())
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    assert got == [(i, b"event %d" % i) for i in range(50, n + 1)]


BIG_APPENDER = """
    import sys
    from eventstore import EventStore
    with EventStore(sys.argv[1], map_size=64 * 1024) as store:
        with store.stream("s").writer(durable=False, batch=50) as w:
            for i in range(1, 1501):
                w.append(b"%06d" % i * 300)
"""


def test_follower_adopts_a_map_grown_by_the_writer_process(tmp_path: Path) -> None:
    with EventStore(tmp_path, map_size=64 * 1024) as store:
        s = store.create_stream("s", "t")
        proc = child(BIG_APPENDER, str(tmp_path))
        got = list(s.follow(1, poll_s=0.002, stop=lambda: proc.poll() is not None))
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert store.shared.env.info()["map_size"] > 20 * 64 * 1024
    assert got == [(i, b"%06d" % i * 300) for i in range(1, 1501)]


def test_reader_is_not_blocked_by_an_open_batch(tmp_path: Path) -> None:
    with EventStore(tmp_path) as store:
        s = store.create_stream("s", "t")
        with s.writer(durable=False, batch=10) as w:
            w.append_many([b"%d" % i for i in range(10)])
            w.append(b"pending")
            assert s.last_seq == 10  # the reader sees committed records only
            assert len(list(s.read())) == 10
        assert s.last_seq == 11


# ------------------------------------------------------------------ corruption


def fill(path: Path, n: int = 500) -> list[bytes]:
    payload = [b"record %d " % i * (1 + i % 5) for i in range(1, n + 1)]
    write_all(path, "s", [payload[: n // 2], payload[n // 2 :]], durable=False, batch=100)
    return payload


def test_truncated_data_file_is_log_corrupt(tmp_path: Path) -> None:
    fill(tmp_path)
    data = tmp_path / "data.mdb"
    size = data.stat().st_size
    for keep in (size // 2, 4096 + 100, 100, 0):
        with data.open("r+b") as f:
            f.truncate(keep)
        with pytest.raises(LogCorruptError):
            EventStore(tmp_path, full_check=False)


def test_data_file_deleted_under_an_open_store_is_log_corrupt(tmp_path: Path) -> None:
    """The per-transaction check reads a held descriptor, but still sees the name go."""
    fill(tmp_path)
    with EventStore(tmp_path, full_check=False) as store:
        stream = store.stream("s")
        assert sum(1 for _ in stream.read()) == 500
        (tmp_path / "data.mdb").unlink()
        with pytest.raises(LogCorruptError, match="data file is gone"):
            sum(1 for _ in stream.read())


def test_data_file_replaced_by_a_truncated_one_under_an_open_store_is_log_corrupt(
    tmp_path: Path,
) -> None:
    """A file renamed over the open one is checked, not the held (sound) old inode."""
    fill(tmp_path)
    with EventStore(tmp_path, full_check=False) as store:
        stream = store.stream("s")
        assert sum(1 for _ in stream.read()) == 500
        data = tmp_path / "data.mdb"
        copy = tmp_path / "copy.mdb"
        copy.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
        os.replace(copy, data)
        with pytest.raises(LogCorruptError, match="truncated"):
            sum(1 for _ in stream.read())


def test_damaged_stream_metadata_is_log_corrupt(tmp_path: Path) -> None:
    fill(tmp_path)
    env = lmdb.open(str(tmp_path), max_dbs=8)
    db = env.open_db(b"streams")
    with env.begin(write=True) as txn:
        txn.put(b"s", b"\xc1garbage", db=db)
    env.close()
    with pytest.raises(LogCorruptError, match="does not decode"):
        EventStore(tmp_path)


def test_stream_metadata_that_disagrees_with_the_records_is_log_corrupt(tmp_path: Path) -> None:
    fill(tmp_path, 100)
    env = lmdb.open(str(tmp_path), max_dbs=8)
    db = env.open_db(b"records")
    with env.begin(write=True) as txn:
        txn.delete(pack_key(1, 100), db=db)
    env.close()
    with pytest.raises(LogCorruptError) as err:
        EventStore(tmp_path)
    assert err.value.seq == 100


DAMAGE = """
    import json, random, shutil, sys
    from pathlib import Path
    from eventstore import EventStore, LogCorruptError
    pristine, work, expected = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
    for seed in range(int(sys.argv[4])):
        rng = random.Random(seed)
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(pristine, work)
        data = work / "data.mdb"
        size = data.stat().st_size
        with data.open("r+b") as f:
            for _ in range(rng.choice([1, 3, 20])):
                at = rng.randrange(size)
                f.seek(at)
                f.write(rng.randbytes(rng.randint(1, 64)))
        try:
            with EventStore(work) as store:
                s = store.stream("s")
                got = [d.decode("latin-1") for _, d in s.read()]
                s.verify_chain()
            print(seed, "intact" if got == expected else "WRONG", flush=True)
        except LogCorruptError:
            print(seed, "corrupt", flush=True)
        except Exception as exc:
            print(seed, "RAISED", type(exc).__name__, exc, flush=True)
"""


@pytest.mark.parametrize(
    "seeds", [20, pytest.param(400, marks=[pytest.mark.soak, pytest.mark.timeout(3600)])],
    ids=["short", "soak"],
)  # fmt: skip
def test_random_damage_gives_log_corrupt_error_never_a_crash(tmp_path: Path, seeds: int) -> None:
    """Overwrite random bytes; open + read + verify must either give back exactly what
    was written or raise LogCorruptError: never another exception, never a segfault
    (the child process would die by a signal). Seeds 0..19 in make test, 0..399 soak."""
    pristine = tmp_path / "pristine"
    payload = fill(pristine, 2000)
    expected = json.dumps([p.decode("latin-1") for p in payload])
    proc = child(DAMAGE, str(pristine), str(tmp_path / "work"), expected, str(seeds))
    out, err = proc.communicate(timeout=3000)
    assert proc.returncode == 0, f"child died ({proc.returncode}): {out[-2000:]} {err[-2000:]}"
    lines = out.splitlines()
    assert len(lines) == seeds
    bad = [line for line in lines if line.split()[1] not in ("intact", "corrupt")]
    assert not bad, bad
    assert any(line.endswith("corrupt") for line in lines)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(n=st.integers(1, 3 * LINK + 5), data=st.data())
def test_altering_any_record_is_found_by_verify_chain(
    tmp_path_factory: pytest.TempPathFactory, n: int, data: st.DataObject
) -> None:
    path = tmp_path_factory.mktemp("store")
    payload = [b"rec-%d" % i for i in range(1, n + 1)]
    write_all(path, "s", [payload], durable=False, batch=50)
    with EventStore(path) as store:
        fingerprint = store.stream("s").verify_chain()
    victim = data.draw(st.integers(1, n), label="victim")
    new = data.draw(st.binary(max_size=20).filter(lambda b: b != payload[victim - 1]))
    env = lmdb.open(str(path), max_dbs=8)
    with env.begin(write=True) as txn:
        txn.put(pack_key(1, victim), new, db=env.open_db(b"records", txn=txn))
    env.close()
    with EventStore(path) as store:
        with pytest.raises(LogCorruptError) as err:
            store.stream("s").verify_chain()
        assert store.stream("s").fingerprint == fingerprint  # metadata untouched
    link_first = (victim - 1) // LINK * LINK + 1
    assert err.value.seq == link_first
    assert f"{link_first}..{min(link_first + LINK - 1, n)}" in str(err.value)


def test_tampered_fingerprint_in_metadata_is_found(tmp_path: Path) -> None:
    fill(tmp_path, 70)
    env = lmdb.open(str(tmp_path), max_dbs=8)
    import msgspec

    from eventstore.layout import StreamRecord, decode_record, encode_record

    db = env.open_db(b"streams")
    with env.begin(write=True) as txn:
        rec: StreamRecord = decode_record(txn.get(b"s", db=db) or b"")
        txn.put(b"s", encode_record(msgspec.structs.replace(rec, fingerprint="00" * 16)), db=db)
    env.close()
    with EventStore(tmp_path) as store:
        with pytest.raises(LogCorruptError) as err:
            store.stream("s").verify_chain()
        assert err.value.seq == LINK + 1
        with pytest.raises(LogCorruptError):
            store.stream("s").writer(durable=True)  # a writer checks the chain's tail too


def test_trust_record_follows_our_clean_closes_only(tmp_path: Path) -> None:
    from eventstore import trust

    fill(tmp_path, 10)
    assert trust.is_trusted(tmp_path)  # closed cleanly by us
    proc = child(HOLD_WRITER, str(tmp_path))  # appends, then is killed while open
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    proc.kill()
    proc.communicate()
    assert not trust.is_trusted(tmp_path)  # the next open walks the whole file
    with EventStore(tmp_path) as store:
        assert store.stream("s").last_seq == 11
    assert trust.is_trusted(tmp_path)


def test_open_elsewhere_sees_other_processes_only(tmp_path: Path) -> None:
    from eventstore.filecheck import open_elsewhere

    fill(tmp_path, 10)
    assert not open_elsewhere(tmp_path)
    with EventStore(tmp_path):
        assert not open_elsewhere(tmp_path)  # our own lock does not count
    proc = child(HOLD_WRITER, str(tmp_path))
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
        assert open_elsewhere(tmp_path)
        with EventStore(tmp_path) as store:  # opens while the other process writes
            assert store.stream("s").last_seq == 11
    finally:
        proc.kill()
        proc.communicate()
    assert not open_elsewhere(tmp_path)


def test_a_writer_keeps_the_store_open_until_it_closes(tmp_path: Path) -> None:
    with EventStore(tmp_path) as store:
        w = store.create_stream("s", "t").writer(durable=False)
    w.append(b"after the store handle closed")
    w.close()
    w.close()  # idempotent
    with EventStore(tmp_path) as store:
        assert list(store.stream("s").read()) == [(1, b"after the store handle closed")]
