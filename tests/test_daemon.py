"""The demo daemon against the emulator: parity with a backtest, clean stops, halts, resume."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner

from engine.events import (
    CandleClosed,
    Fill,
    Halted,
    SessionStarted,
    SubmitOrder,
)
from engine.instrument import BTCUSDT, MONEY_SCALE, Instrument
from eventstore import EventStore
from replay.cards import load_card
from replay.cli import cli
from replay.session import run_backtest
from tests.cards import ma_cross_card
from tools.bybit_emulator import EmulatorHandle
from tools.daemon_driver import DaemonProcess

HISTORY = 100  # candles the emulator has played before the daemon starts


@pytest.fixture
def card_5m(tmp_path: Path) -> Path:
    """A moving-average cross on the emulator's 5-minute candles, quick to trade."""
    return ma_cross_card(tmp_path, fast=5, slow=20, timeframe="5m")


def backtest(card: Path, candles: Sequence[CandleClosed], store: Path, session: str) -> None:
    loaded = load_card(card)
    inst = Instrument(BTCUSDT)  # the emulator serves Bybit's BTCUSDT filters
    with EventStore(store) as es:
        run_backtest(
            loaded,
            iter(candles),
            inst,
            es,
            session_id=session,
            initial_balance=10_000 * MONEY_SCALE,
            first_open_ms=candles[0].open_ms,
        )


def test_demo_against_the_emulator_decides_exactly_like_the_backtest(
    emulator_factory: Callable[..., EmulatorHandle],
    bybit_candles: Sequence[CandleClosed],
    card_5m: Path,
    tmp_path: Path,
) -> None:
    live_candles = 160
    emulator = emulator_factory(history=HISTORY)
    daemon = DaemonProcess(emulator, card_5m, tmp_path / "live", "demo-1", "--warmup", str(HISTORY))
    try:
        daemon.wait_warm(HISTORY)
        daemon.play(live_candles)
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    assert daemon.stopped_cleanly
    orders = [e for e in daemon.events if isinstance(e, SubmitOrder)]
    fills = [e for e in daemon.events if isinstance(e, Fill)]
    assert len(orders) >= 4 and len(fills) >= len(orders) - 1
    # A person watching sees one line per live candle decision and one per fill (stdout).
    lines = daemon.stdout_path.read_text().splitlines()
    live_closes = [e for e in daemon.events if isinstance(e, CandleClosed) and not e.backfill]
    assert len([x for x in lines if " close " in x]) == len(live_closes)
    assert len([x for x in lines if " fill " in x]) == len(fills)
    assert any("-> Buy" in x or "-> Sell" in x for x in lines)

    # The daemon warmed up on HISTORY back-filled candles and acted on none of them; the
    # backtest gets the same candles with the same flag, then the same live candles.
    warm = [msgspec.structs.replace(c, backfill=True) for c in bybit_candles[:HISTORY]]
    live = list(bybit_candles[HISTORY : HISTORY + live_candles])
    backtest(card_5m, warm + live, tmp_path / "bt", "bt-1")
    result = CliRunner().invoke(
        cli,
        [
            "diff",
            "bt-1",
            "demo-1",
            "--store",
            str(tmp_path / "bt"),
            "--store-b",
            str(tmp_path / "live"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "no differences" in result.output

    # Every execution the emulator made is in the log exactly once.
    venue_execs = emulator.call(lambda st: [f.exec_id for f in st.venue.executions()])  # type: ignore[attr-defined]
    logged = [f.exec_id for f in fills]
    assert sorted(logged) == sorted(venue_execs) and len(set(logged)) == len(logged)

    # And the session verifies like any backtest.
    verified = CliRunner().invoke(cli, ["verify", "demo-1", "--store", str(tmp_path / "live")])
    assert verified.exit_code == 0, verified.output


def test_a_restarted_daemon_resumes_its_session_and_a_halt_sticks(
    emulator_factory: Callable[..., EmulatorHandle],
    card_5m: Path,
    tmp_path: Path,
) -> None:
    emulator = emulator_factory(history=HISTORY)
    store = tmp_path / "live"
    first = DaemonProcess(emulator, card_5m, store, "demo-2", "--warmup", str(HISTORY), "-q")
    try:
        first.wait_warm(HISTORY)
        first.play(40)
        assert first.stop() == 0
    finally:
        first.kill()
    before = len(first.events)
    assert first.stdout_path.read_text() == ""  # -q: no per-candle lines
    started = [e for e in first.events if isinstance(e, SessionStarted)]
    assert len(started) == 1

    # The halt is requested while nothing runs; the resumed daemon applies it.
    halt = CliRunner().invoke(cli, ["halt", "demo-2", "--store", str(store)])
    assert halt.exit_code == 0 and "resumes" in halt.output

    second = DaemonProcess(emulator, card_5m, store, "demo-2", "--warmup", str(HISTORY))
    try:
        second.wait_for("the halt", lambda evs: any(isinstance(e, Halted) for e in evs))
        second.play(40)
        assert second.stop() == 0
    finally:
        second.kill()
    events = second.events
    assert len(events) > before
    # The clean stop left a snapshot: the restart folded only what came after it.
    assert f"restored the snapshot at seq {before}" in second.tail()
    assert sum(isinstance(e, SessionStarted) for e in events) == 1  # the same session
    halted_at = next(i for i, e in enumerate(events) if isinstance(e, Halted))
    entries = [e for e in events[halted_at:] if isinstance(e, SubmitOrder) and not e.reduce_only]
    assert entries == []  # no new entries after the halt
    verified = CliRunner().invoke(cli, ["verify", "demo-2", "--store", str(store)])
    assert verified.exit_code == 0, verified.output
    listed = CliRunner().invoke(cli, ["sessions", "--store", str(store), "--json"])
    (row,) = [json.loads(line) for line in listed.output.splitlines()]  # snapshots hidden
    assert row["session"] == "demo-2" and row["mode"] == "demo" and row["status"] == "stopped"
    assert "?" not in row["period"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_metrics_scrape_and_json_logs(
    emulator_factory: Callable[..., EmulatorHandle], card_5m: Path, tmp_path: Path
) -> None:
    import json
    import urllib.request

    port = _free_port()
    emulator = emulator_factory(history=HISTORY)
    daemon = DaemonProcess(
        emulator,
        card_5m,
        tmp_path / "live",
        "metered",
        "--warmup",
        str(HISTORY),
        "--metrics-port",
        str(port),
        "--log-json",
    )
    try:
        daemon.wait_warm(HISTORY)
        daemon.play(60)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    samples = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    orders = sum(isinstance(e, SubmitOrder) for e in daemon.events)
    assert orders > 0
    assert samples["replay_events_appended_total"] >= HISTORY + 60
    assert samples['replay_orders_total{kind="submitted"}'] == orders
    assert samples["replay_candle_to_order_seconds_count"] >= 1
    assert "replay_clock_offset_ms" in samples and "replay_position_lots" in samples
    assert samples["replay_rate_limit_waits"] >= 0
    by_status = {k: v for k, v in samples.items() if k.startswith("replay_orders_by_status")}
    assert sum(by_status.values()) == orders
    lines = [json.loads(line) for line in daemon.tail().splitlines() if line.startswith("{")]
    assert lines and all(line["session"] == "metered" for line in lines)
    seqs = [line["seq"] for line in lines]
    assert seqs == sorted(seqs) and seqs[-1] > HISTORY  # each line says where the log was
    assert any("running" in line["msg"] for line in lines)


def test_a_second_signal_exits_at_once_and_the_log_stays_whole(
    emulator_factory: Callable[..., EmulatorHandle], card_5m: Path, tmp_path: Path
) -> None:
    import signal

    emulator = emulator_factory(history=HISTORY)
    store = tmp_path / "live"
    daemon = DaemonProcess(emulator, card_5m, store, "twice", "--warmup", str(HISTORY))
    try:
        daemon.wait_warm(HISTORY)
        daemon.play(30)
        daemon.proc.send_signal(signal.SIGTERM)
        daemon.proc.send_signal(signal.SIGTERM)
        code = daemon.proc.wait(20)
    finally:
        daemon.kill()
    assert code in (0, 130)  # 130: the second signal cut the clean stop short
    verified = CliRunner().invoke(cli, ["verify", "twice", "--store", str(store)])
    assert verified.exit_code == 0, verified.output
    again = DaemonProcess(emulator, card_5m, store, "twice")
    try:
        again.wait_running()
        again.play(5)
        assert again.stop() == 0
    finally:
        again.kill()
