"""The wire log: every venue byte kept beside the session, and `replay verify --wire`."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner

from adapters.bybit import convert
from adapters.bybit.wire import Frame, Link, decode_record
from engine.events import CandleClosed, Fill, SubmitOrder, decode
from engine.instrument import Instrument
from eventstore import EventStore
from eventstore.joint import append_together
from replay.cli import cli
from replay.wire_capture import stream_name
from replay.wire_verify import verify_wire
from tests.cards import ma_cross_card
from tools.bybit_emulator import EmulatorHandle
from tools.daemon_driver import DaemonProcess

HISTORY = 100


def test_a_joint_commit_lands_in_both_streams_and_the_side_writer_never_commits_alone(
    tmp_path: Path,
) -> None:
    with EventStore(tmp_path / "s") as es:
        main = es.create_stream("a", kind="demo").writer(durable=True)
        side = es.create_stream("a.wire", kind="wire").writer(durable=False, batch=1 << 62)
        side.stage_many([b"early"])
        assert es.stream("a.wire").last_seq == 0  # staged, not committed
        seqs = append_together(main, [b"e1", b"e2"], side, [b"f1"])
        assert list(seqs) == [1, 2]
        assert [r for _, r in es.stream("a").read()] == [b"e1", b"e2"]
        assert [bytes(r) for _, r in es.stream("a.wire").read()] == [b"early", b"f1"]
        assert es.stream("a.wire").verify_chain() == es.stream("a.wire").fingerprint
        main.close()
        side.close()


def _run_demo(
    emulator: EmulatorHandle, tmp_path: Path, session: str, candles: int, **faults: object
) -> DaemonProcess:
    card = ma_cross_card(tmp_path, fast=5, slow=20, timeframe="5m")
    daemon = DaemonProcess(emulator, card, tmp_path / "live", session, "--warmup", str(HISTORY))
    try:
        daemon.wait_warm(HISTORY)
        emulator.set_faults(**faults)
        daemon.play(candles)
        emulator.set_faults(ws_drop_after_private=0, malformed_next=0)
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    return daemon


def test_a_demo_session_with_faults_passes_verify_wire_and_keeps_no_secret(
    emulator_factory: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    emulator = emulator_factory(history=HISTORY)
    daemon = _run_demo(
        emulator,
        tmp_path,
        "wire-1",
        90,
        private_duplicate=True,
        private_reorder=True,
        malformed_next=40,
        ws_drop_after_private=25,
    )
    assert sum(isinstance(e, SubmitOrder) for e in daemon.events) >= 2
    store = tmp_path / "live"
    out = CliRunner().invoke(cli, ["verify", "wire-1", "--wire", "--store", str(store)])
    assert out.exit_code == 0, out.output
    assert "OK wire-1 (wire)" in out.output
    with EventStore(store, readonly=True) as es:
        res = verify_wire(es, "wire-1")
        records = [decode_record(r) for _, r in es.stream(stream_name("wire-1")).read()]
        logged = {seq: decode(raw) for seq, raw in es.stream("wire-1").read()}
    assert res.ok and res.rederived > 90
    assert res.silent.get("duplicate execution", 0) > 0  # the duplicated private messages
    assert res.silent.get("not a JSON object", 0) > 0 and res.silent.get("malformed item", 0) > 0
    assert res.bytes_per_candle > 0 and res.private_bytes_per_fill > 0
    # Every live candle and every fill in the log is linked to the frame that carried it.
    linked = {r.seq for r in records if isinstance(r, Link)}
    for seq, event in logged.items():
        if isinstance(event, Fill) or (isinstance(event, CandleClosed) and not event.backfill):
            assert seq in linked, (seq, event)
    sources = {r.source for r in records if isinstance(r, Frame)}
    assert {"public", "private", "rest"} <= sources
    # Keys, signatures and auth frames are never kept.
    raw = (store / "data.mdb").read_bytes()
    assert emulator.api_secret.encode() not in raw
    signatures = emulator.emulator.rest.signatures + emulator.emulator.hub.signatures
    assert len(signatures) > 10
    for sig in signatures:
        assert sig.encode() not in raw, sig
    assert b'"op":"auth"' not in raw and b'"op": "auth"' not in raw


def test_a_changed_converter_is_named_at_the_first_frame_whose_events_differ(
    emulator_factory: Callable[..., EmulatorHandle],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emulator = emulator_factory(history=HISTORY)
    _run_demo(emulator, tmp_path, "wire-2", 60)
    store = tmp_path / "live"
    with EventStore(store, readonly=True) as es:
        assert verify_wire(es, "wire-2").ok
        real = convert.candle_from_kline

        def misread(inst: Instrument, item: dict[str, Any]) -> CandleClosed | None:
            candle = real(inst, item)  # a field misread: every high one tick up
            if candle is None:
                return None
            return msgspec.structs.replace(candle, high=candle.high + 1)

        monkeypatch.setattr(convert, "candle_from_kline", misread)
        res = verify_wire(es, "wire-2")
    assert not res.ok and res.divergence is not None
    assert res.divergence.source == "public" and res.divergence.n > 0
    assert res.divergence.expected["high"] + 1 == res.divergence.got["high"]


def test_a_kill_after_commit_leaves_no_event_without_its_bytes_and_the_resume_verifies(
    emulator_factory: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    emulator = emulator_factory(history=HISTORY)
    card = ma_cross_card(tmp_path, fast=5, slow=20, timeframe="5m")
    store = tmp_path / "live"
    first = DaemonProcess(
        emulator,
        card,
        store,
        "wire-3",
        "--warmup",
        str(HISTORY),
        env={"REPLAY_CRASH_AT": "after_commit:1"},
    )
    try:
        first.wait_warm(HISTORY)
        for _ in range(60):
            emulator.advance(1)
            time.sleep(0.3)
            if first.proc.poll() is not None:
                break
        assert first.proc.poll() == -9  # killed with a command committed, not sent
    finally:
        first.kill()
    with EventStore(store, readonly=True) as es:
        res = verify_wire(es, "wire-3")
    assert res.ok, res
    second = DaemonProcess(emulator, card, store, "wire-3")
    try:
        second.wait_running()
        second.play(5)
        assert second.stop() == 0
    finally:
        second.kill()
    out = CliRunner().invoke(cli, ["verify", "wire-3", "--wire", "--store", str(store)])
    assert out.exit_code == 0, out.output
    assert "2 run(s)" in out.output
