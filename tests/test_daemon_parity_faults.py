"""Parity with the backtest while the private stream is late and out of order.

The card sizes every entry on the equity (``equity_pct``), so a fill, fee or close that
the daemon folds after the next candle instead of before it changes an order's size: the
private-stream barrier must fold a bar's fills before the next bar, whatever the delay and
the order in which the venue sends them (a wallet message sizes nothing: see below).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec
import pytest
from click.testing import CliRunner

from engine.events import CandleClosed, Fill, SubmitOrder
from replay.cli import cli
from tests.cards import ma_cross_card
from tests.test_daemon import HISTORY, backtest
from tools.bybit_emulator import EmulatorHandle
from tools.daemon_driver import DaemonProcess


@pytest.mark.parametrize(
    ("transport", "delay_ms", "pong_first", "fallback"),
    [
        # The pong comes after the late messages and suffices (unless a loaded machine
        # holds it past the timeout: then the look-up must keep parity too).
        ("rest", 40, False, ""),
        ("trade-api", 40, False, ""),
        # The pong itself is later than the barrier's timeout: fills looked up over REST.
        ("rest", 300, False, "no private-stream pong within"),
        # The pong overtakes the bar's messages: the open market order says fills are owed.
        ("trade-api", 100, True, "still open; looking the fills up over REST"),
    ],
)
def test_delayed_and_reordered_private_messages_keep_parity_and_verify_wire(
    emulator_factory: Callable[..., EmulatorHandle],
    bybit_candles: Sequence[CandleClosed],
    tmp_path: Path,
    transport: str,
    delay_ms: int,
    pong_first: bool,
    fallback: str,
) -> None:
    # The card orders on live candles 25, 27, 41, 43, 47, 66 and 70 of the fixture: seven
    # orders, each entry sized on the equity the previous fills left.
    live_candles = 75
    emulator = emulator_factory(history=HISTORY)
    card = ma_cross_card(tmp_path, fast=5, slow=20, timeframe="5m", equity_pct=90)
    store = tmp_path / "live"
    extra = ["--trade-api"] if transport == "trade-api" else []
    daemon = DaemonProcess(emulator, card, store, "late-1", "--warmup", str(HISTORY), *extra)
    try:
        daemon.wait_warm(HISTORY)
        emulator.set_faults(
            private_delay_ms=delay_ms, private_reorder=True, private_pong_first=pong_first
        )
        daemon.play(live_candles)
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    orders = [e for e in daemon.events if isinstance(e, SubmitOrder)]
    assert len(orders) >= 4
    assert any(isinstance(e, Fill) for e in daemon.events)

    warm = [msgspec.structs.replace(c, backfill=True) for c in bybit_candles[:HISTORY]]
    live = list(bybit_candles[HISTORY : HISTORY + live_candles])
    backtest(card, warm + live, tmp_path / "bt", "bt-1")
    diff = CliRunner().invoke(
        cli, ["diff", "bt-1", "late-1", "--store", str(tmp_path / "bt"), "--store-b", str(store)]
    )
    assert diff.exit_code == 0 and "no differences" in diff.output, diff.output
    verified = CliRunner().invoke(cli, ["verify", "late-1", "--wire", "--store", str(store)])
    assert verified.exit_code == 0, verified.output
    # The faults that defeat the pong made the daemon look the fills up.
    if fallback:
        assert fallback in daemon.stderr_path.read_text()


def test_a_wallet_message_folded_or_not_sizes_no_order_differently() -> None:
    """A late (or stale) wallet message cannot move an order's size: the engine's balance
    is its fills, fees and funding; a ``BalanceSnapshot`` is logged, never read."""
    from engine.events import BalanceSnapshot, Intent
    from tests.test_engine_support import Desk, risk, submits

    script = {
        1: [Intent("enter_long", equity_pct=90.0)],
        4: [Intent("enter_short", equity_pct=90.0)],
    }
    config = risk(allow_flip=True, max_leverage=3)
    plain, told = Desk(script, config), Desk(script, config)
    for desk in (plain, told):
        desk.close(60_000)
        (entry,) = submits(desk.close(60_000))
        desk.accept(entry)
        desk.fill(entry, entry.qty, 60_000)
    told.feed(BalanceSnapshot(ts=told.now(), coin="USDT", wallet=1, available=0))  # stale
    for price in (61_000, 62_000, 63_000):
        plain.close(price)
        told.close(price)
    flips = submits(plain.derived), submits(told.derived)
    assert len(flips[0]) == 2 and flips[0] == flips[1]
    assert plain.state.balance == told.state.balance != 1
    assert plain.state.position.qty == told.state.position.qty


def test_a_fill_look_up_before_the_sessions_first_fill_logs_no_account_history(
    emulator_factory: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    """The REST look-up of owed fills reads the venue's default window when the session has
    no execution yet: the account's executions from before the session are history there
    too (as in reconciliation), never logged as external activity."""
    from engine.events import ExternalFill
    from tests.test_daemon_external import manual_order

    emulator = emulator_factory(history=HISTORY)
    manual_order(emulator, "Buy")  # what the account did before: bought and sold by hand
    emulator.advance(1)
    manual_order(emulator, "Sell")
    emulator.advance(1)
    card = ma_cross_card(tmp_path, fast=5, slow=20, timeframe="5m")
    store = tmp_path / "live"
    daemon = DaemonProcess(emulator, card, store, "late-2", "--warmup", str(HISTORY))
    try:
        daemon.wait_warm(HISTORY)
        emulator.set_faults(private_delay_ms=100, private_reorder=True, private_pong_first=True)
        for _ in range(80):
            daemon.play(1)
            if any(isinstance(e, Fill) for e in daemon.events):
                break
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    assert any(isinstance(e, Fill) for e in daemon.events)
    assert "still open; looking the fills up over REST" in daemon.stderr_path.read_text()
    assert not [e for e in daemon.events if isinstance(e, ExternalFill)]
    verified = CliRunner().invoke(cli, ["verify", "late-2", "--wire", "--store", str(store)])
    assert verified.exit_code == 0, verified.output
