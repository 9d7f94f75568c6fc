"""``EventStore.delete_stream``: on real LMDB in a temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventstore import LINK, EventStore, StreamNotFound, WriterLocked


def _fill(store: EventStore, name: str, n: int) -> None:
    with store.create_stream(name, "backtest").writer(durable=False) as w:
        w.append_many([f"{name}-{i}".encode() for i in range(n)])


def test_delete_removes_only_that_stream_and_survives_reopen(tmp_path: Path) -> None:
    with EventStore(tmp_path) as store:
        _fill(store, "a", LINK * 2 + 5)  # several chain links
        _fill(store, "b", 7)
        _fill(store, "c", 3)
        fingerprint_c = store.stream("c").fingerprint
        assert store.delete_stream("b") == 7
        assert [s.name for s in store.streams()] == ["a", "c"]
        with pytest.raises(StreamNotFound):
            store.stream("b")
    with EventStore(tmp_path, full_check=True) as store:  # validation passes after the delete
        assert [s.name for s in store.streams()] == ["a", "c"]
        assert [r for _, r in store.stream("c").read()] == [b"c-0", b"c-1", b"c-2"]
        assert store.stream("c").verify_chain() == fingerprint_c
        assert store.delete_stream("a") == LINK * 2 + 5
        store.stream("c").verify_chain()
        # the name can be used again, with a fresh id and no old records
        _fill(store, "b", 2)
        assert [r for _, r in store.stream("b").read()] == [b"b-0", b"b-1"]


def test_delete_refuses_a_stream_with_an_open_writer(tmp_path: Path) -> None:
    with EventStore(tmp_path) as store:
        stream = store.create_stream("live", "demo")
        with stream.writer(durable=True) as w:
            w.append(b"x")
            with pytest.raises(WriterLocked):
                store.delete_stream("live")
        assert "live" in store
        assert store.delete_stream("live") == 1


def test_delete_of_an_unknown_stream_is_stream_not_found(tmp_path: Path) -> None:
    with EventStore(tmp_path) as store, pytest.raises(StreamNotFound):
        store.delete_stream("nope")
