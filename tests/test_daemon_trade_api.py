"""The demo daemon sending its orders over the WebSocket Trade API of the emulator."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec
from click.testing import CliRunner

from engine.events import CandleClosed, Fill, OrderAccepted, SubmitOrder
from replay.cli import cli
from tests.cards import ma_cross_card
from tests.test_daemon import HISTORY, backtest
from tools.bybit_emulator import EmulatorHandle
from tools.daemon_driver import DaemonProcess


def test_over_the_trade_api_the_daemon_decides_exactly_like_the_backtest(
    emulator_factory: Callable[..., EmulatorHandle],
    bybit_candles: Sequence[CandleClosed],
    tmp_path: Path,
) -> None:
    live_candles = 120
    emulator = emulator_factory(history=HISTORY)
    card = ma_cross_card(tmp_path, fast=5, slow=20, timeframe="5m")
    store = tmp_path / "live"
    daemon = DaemonProcess(
        emulator, card, store, "trade-1", "--warmup", str(HISTORY), "--trade-api"
    )
    try:
        daemon.wait_warm(HISTORY)
        daemon.play(live_candles)
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    orders = [e for e in daemon.events if isinstance(e, SubmitOrder)]
    assert len(orders) >= 4
    # Every order went over the socket, none twice.
    assert emulator.emulator.trade.requests >= len(orders)
    assert all(emulator.emulator.wire.creates[o.client_id] == 1 for o in orders)

    warm = [msgspec.structs.replace(c, backfill=True) for c in bybit_candles[:HISTORY]]
    live = list(bybit_candles[HISTORY : HISTORY + live_candles])
    backtest(card, warm + live, tmp_path / "bt", "bt-1")
    diff = CliRunner().invoke(
        cli, ["diff", "bt-1", "trade-1", "--store", str(tmp_path / "bt"), "--store-b", str(store)]
    )
    assert diff.exit_code == 0 and "no differences" in diff.output, diff.output
    verified = CliRunner().invoke(cli, ["verify", "trade-1", "--wire", "--store", str(store)])
    assert verified.exit_code == 0, verified.output
    assert "trade" in verified.output  # the Trade API replies are kept and re-derived


def test_an_unanswered_create_over_the_trade_api_is_looked_up_not_sent_again(
    emulator_factory: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    """With private messages delayed and reordered too: verify and verify --wire stay green."""
    emulator = emulator_factory(history=HISTORY)
    card = ma_cross_card(tmp_path, fast=5, slow=20, timeframe="5m")
    store = tmp_path / "live"
    daemon = DaemonProcess(
        emulator, card, store, "trade-2", "--warmup", str(HISTORY), "--trade-api"
    )
    try:
        daemon.wait_warm(HISTORY)
        emulator.set_faults(
            lose_reply_next=1, lose_reply_mode="500", private_delay_ms=30, private_reorder=True
        )
        for _ in range(60):
            daemon.play(1)
            if any(isinstance(e, SubmitOrder) for e in daemon.events):
                break
        daemon.play(3)  # the order fills on the next bar
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    first = next(e for e in daemon.events if isinstance(e, SubmitOrder))
    assert emulator.emulator.wire.creates[first.client_id] == 1  # looked up, never re-sent
    assert any(
        isinstance(e, OrderAccepted) and e.client_id == first.client_id for e in daemon.events
    )
    assert any(isinstance(e, Fill) for e in daemon.events)
    verified = CliRunner().invoke(cli, ["verify", "trade-2", "--wire", "--store", str(store)])
    assert verified.exit_code == 0, verified.output
