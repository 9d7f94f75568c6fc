"""``eventstore.memory``: the fingerprint of records kept in memory is a real store's."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventstore import GENESIS, EventStore, EventStoreError, StreamExists
from eventstore.memory import MemoryStore

records = st.binary(min_size=0, max_size=200)
batches = st.lists(st.lists(records, max_size=150), max_size=8)


@settings(max_examples=40, deadline=None)
@given(batches=batches, batch=st.sampled_from([1, 7, 64, 65_536]))
def test_memory_fingerprint_equals_lmdb_for_any_batching(batches: list[list[bytes]], batch: int):
    """Across link boundaries (64 records) and however the appends were grouped."""
    mem = MemoryStore(keep=True)
    stream = mem.create_stream("s", kind="backtest", meta={"status": "running"})
    with stream.writer(durable=False) as w:
        for b in batches:
            w.append_many(b)
    with tempfile.TemporaryDirectory() as tmp, EventStore(Path(tmp)) as store:
        real = store.create_stream("s", kind="backtest")
        flat = [r for b in batches for r in b]
        with real.writer(durable=False, batch=batch) as rw:
            for r in flat:  # one by one, committed every `batch` records
                rw.append(r)
        assert stream.fingerprint == real.fingerprint
        assert stream.last_seq == real.last_seq == len(flat)
        assert stream.records == flat


def test_empty_stream_fingerprint_and_one_writer_at_a_time():
    mem = MemoryStore()
    s = mem.create_stream("a", kind="backtest")
    assert s.fingerprint == GENESIS.hex()
    assert s.records is None  # not kept unless asked
    with pytest.raises(StreamExists):
        mem.create_stream("a", kind="backtest")
    w = s.writer(durable=False)
    with pytest.raises(EventStoreError):
        s.writer(durable=False)
    assert w.append(b"x") == 1
    w.close()
    with pytest.raises(EventStoreError):
        w.append(b"y")
    s.set_meta("status", "complete")
    assert s.meta == {"status": "complete"} and "a" in mem
