"""The account's other activity, end to end against the emulator: a manual order placed on
the same account during a demo session (and while the daemon is stopped) and a second
session trading the same account.

Issue 10: the manual order's execution is logged as ``ExternalFill`` (never a ``Fill``),
the book keeps this session's position, reconciliation reports ``PositionDrift`` and the
session halts -- or, with ``--on-drift adopt``, takes the venue's position and goes on.
Issue 12 section 4: a second session on the same account appends no fill of the first's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pybit.unified_trading import HTTP

from engine.commands import client_prefix
from engine.events import (
    CandleClosed,
    EventBase,
    ExternalFill,
    Fill,
    Halted,
    PositionDrift,
)
from replay.cli import cli
from tests.cards import ma_cross_card
from tools.bybit_emulator import EmulatorHandle
from tools.daemon_driver import DaemonProcess

HISTORY = 40
LOTS = 10  # 0.01 BTC in BTCUSDT lots (qty step 0.001)


@pytest.fixture
def quiet_card(tmp_path: Path) -> Path:
    """A card that never trades on its own (a cross of a moving average with itself)."""
    return ma_cross_card(tmp_path, fast=20, slow=20, timeframe="5m", name="quiet")


def manual_order(emulator: EmulatorHandle, side: str = "Buy") -> None:
    """What a person does in the app: a 0.01 BTC market order, no orderLinkId."""
    http = HTTP(api_key=emulator.api_key, api_secret=emulator.api_secret, retry_delay=0)
    http.endpoint = emulator.rest
    resp = http.place_order(
        category="linear", symbol="BTCUSDT", side=side, orderType="Market", qty="0.01"
    )
    assert resp["retCode"] == 0, resp


def of(events: Sequence[EventBase], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def venue_qty(emulator: EmulatorHandle) -> int:
    return int(emulator.call(lambda st: st.venue.position.qty))


def verify(store: Path, session: str) -> None:
    result = CliRunner().invoke(cli, ["verify", session, "--store", str(store)])
    assert result.exit_code == 0, result.output


def inspect_position(store: Path, session: str, at: int) -> Decimal:
    """The position ``replay inspect --at`` shows for the account (folded from the log)."""
    args = ["inspect", session, "--store", str(store), "--at", str(at), "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return Decimal(json.loads(result.output)["account"]["position_qty"])


def test_a_manual_order_is_external_drift_halts_before_and_after_a_restart(
    emulator_factory: Callable[..., EmulatorHandle], quiet_card: Path, tmp_path: Path
) -> None:
    emulator = emulator_factory(history=HISTORY)
    store = tmp_path / "live"
    first = DaemonProcess(emulator, quiet_card, store, "ext-1", "--warmup", str(HISTORY))
    try:
        first.wait_warm(HISTORY)
        first.play(2)
        manual_order(emulator)
        first.play(1)  # the market order fills on the next candle
        first.wait_for("the drift's halt", lambda evs: bool(of(evs, Halted)))
        assert first.stop() == 0
    finally:
        first.kill()
    events = first.events
    (ext,) = of(events, ExternalFill)
    assert (ext.client_id, ext.qty, ext.side) == ("", LOTS, "Buy")
    assert not [f for f in of(events, Fill) if f.exec_id == ext.exec_id]  # never a Fill
    (drift,) = of(events, PositionDrift)
    assert (drift.local_qty, drift.venue_qty, drift.adopt) == (0, LOTS, False)
    assert "position drift" in of(events, Halted)[0].reason
    assert venue_qty(emulator) == LOTS

    # Stopped: another manual order; the restarted daemon finds it at reconciliation.
    manual_order(emulator)
    emulator.advance(1)
    assert venue_qty(emulator) == 2 * LOTS
    second = DaemonProcess(emulator, quiet_card, store, "ext-1")
    try:
        second.wait_for("the second drift", lambda evs: len(of(evs, PositionDrift)) >= 2)
        second.wait_running()
        second.play(1)
        assert second.stop() == 0
    finally:
        second.kill()
    events = second.events
    assert (
        len(of(events, ExternalFill)) == 2
        and len({e.exec_id for e in of(events, ExternalFill)}) == 2
    )
    assert of(events, Fill) == []
    last = of(events, PositionDrift)[-1]
    assert (last.local_qty, last.venue_qty) == (0, 2 * LOTS)
    assert len(of(events, Halted)) >= 2
    verify(store, "ext-1")
    assert inspect_position(store, "ext-1", len(events)) == 0  # the session's own: it never traded


def test_with_adopt_the_session_takes_the_venues_position_and_goes_on(
    emulator_factory: Callable[..., EmulatorHandle], quiet_card: Path, tmp_path: Path
) -> None:
    emulator = emulator_factory(history=HISTORY)
    store = tmp_path / "live"
    args = ("--warmup", str(HISTORY), "--on-drift", "adopt")
    daemon = DaemonProcess(emulator, quiet_card, store, "ext-2", *args)
    try:
        daemon.wait_warm(HISTORY)
        daemon.play(1)
        manual_order(emulator)
        daemon.play(1)
        daemon.wait_for("the adopted drift", lambda evs: bool(of(evs, PositionDrift)))
        daemon.play(3)  # it goes on
        assert daemon.proc.poll() is None
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    events = daemon.events
    assert len(of(events, ExternalFill)) == 1 and of(events, Fill) == []
    (drift,) = of(events, PositionDrift)
    assert (drift.local_qty, drift.venue_qty, drift.adopt) == (0, LOTS, True)
    assert of(events, Halted) == []
    last_drift = events.index(drift)
    assert of(events[last_drift:], CandleClosed)  # candles kept coming after the adoption
    verify(store, "ext-2")
    assert inspect_position(store, "ext-2", len(events)) == Decimal("0.01")  # adopted


def test_a_second_session_on_the_same_account_appends_no_fill_of_the_first(
    emulator_factory: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    """Issue 12 section 4: L1 trades; L2 on the same account logs L1's fills as external."""
    emulator = emulator_factory(history=HISTORY)
    store = tmp_path / "live"
    busy = ma_cross_card(tmp_path, fast=3, slow=6, timeframe="5m", equity_pct=20, name="busy")
    l1 = DaemonProcess(emulator, busy, store, "L1", "--warmup", str(HISTORY))
    l2: DaemonProcess | None = None
    try:
        l1.wait_warm(HISTORY)
        l1.play(20)
        assert of(l1.events, Fill), "L1 must have traded"
        l2 = DaemonProcess(emulator, busy, tmp_path / "live2", "L2", "--warmup", str(HISTORY))
        l2.wait_warm(HISTORY)
        l2.wait_running()
        fills_before = len(of(l1.refresh(), Fill))
        l1.play(40)
        assert len(of(l1.refresh(), Fill)) > fills_before, "L1 must trade while L2 runs"
        l2.wait_for("L1's fills", lambda evs: bool(of(evs, ExternalFill)))
        assert l1.stop() == 0 and l2.stop() == 0
    finally:
        l1.kill()
        if l2 is not None:
            l2.kill()
    own = client_prefix("L2") + "-"
    assert all(f.client_id.startswith(own) for f in of(l2.events, Fill))
    external = of(l2.events, ExternalFill)
    assert external and all(e.client_id.startswith(client_prefix("L1")) for e in external)
    assert of(l2.events, PositionDrift) and of(l2.events, Halted)  # L2 halted on the drift
    report = CliRunner().invoke(
        cli, ["inspect", "L2", "--store", str(tmp_path / "live2"), "--json"]
    )
    assert report.exit_code == 0, report.output
    verify(tmp_path / "live2", "L2")
