"""The account's margin settings on the wire: the emulator's set-leverage and
set-margin-mode (driven by pybit, answered with Bybit's codes), and the daemon that sets
the card's ``sim.leverage``/``sim.margin_mode`` at start, logs the answers, and refuses to
trade when the venue will not take them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pybit.exceptions import InvalidRequestError
from pybit.unified_trading import HTTP

from tests.cards import ma_cross_card
from tools.bybit_emulator import EmulatorHandle
from tools.daemon_driver import DaemonProcess


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def client(emu: EmulatorHandle) -> HTTP:
    http = HTTP(api_key=emu.api_key, api_secret=emu.api_secret, retry_delay=0, max_retries=1)
    http.endpoint = emu.rest
    return http


def _venue(emu: EmulatorHandle) -> tuple[int, str]:
    return emu.call(lambda st: (st.venue.leverage, st.venue.margin_mode))


def test_set_leverage_changes_the_venues_margin_and_answers_110043_when_unchanged(
    emulator: EmulatorHandle,
) -> None:
    http = client(emulator)
    lev: dict[str, Any] = {"category": "linear", "symbol": "BTCUSDT"}
    assert http.set_leverage(**lev, buyLeverage="5", sellLeverage="5")["retCode"] == 0
    assert _venue(emulator)[0] == 5
    with pytest.raises(InvalidRequestError) as same:
        http.set_leverage(**lev, buyLeverage="5", sellLeverage="5")
    assert same.value.status_code == 110043
    with pytest.raises(InvalidRequestError) as uneven:
        http.set_leverage(**lev, buyLeverage="5", sellLeverage="6")
    assert uneven.value.status_code == 10001
    with pytest.raises(InvalidRequestError) as too_high:
        http.set_leverage(**lev, buyLeverage="101", sellLeverage="101")  # BTCUSDT max 100
    assert too_high.value.status_code == 10001
    assert _venue(emulator)[0] == 5


def test_set_margin_mode_switches_between_cross_and_isolated(emulator: EmulatorHandle) -> None:
    http = client(emulator)
    reply = http.set_margin_mode(setMarginMode="ISOLATED_MARGIN")
    assert reply["retCode"] == 0 and reply["result"] == {"reasons": []}
    assert _venue(emulator)[1] == "isolated"
    assert http.set_margin_mode(setMarginMode="REGULAR_MARGIN")["retCode"] == 0
    assert _venue(emulator)[1] == "cross"
    with pytest.raises(InvalidRequestError) as pm:
        http.set_margin_mode(setMarginMode="PORTFOLIO_MARGIN")
    assert pm.value.status_code == 10001


def _card(tmp_path: Path, name: str, sim: str) -> Path:
    card = ma_cross_card(tmp_path, fast=2, slow=5, timeframe="5m", name=name)
    card.write_text(card.read_text() + f"sim: {sim}\n")
    return card


def test_the_daemon_sets_the_cards_leverage_and_margin_mode_and_logs_the_answers(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    card = _card(tmp_path, "isolated5", "{leverage: 5, margin_mode: isolated}")
    daemon = DaemonProcess(emulator, card, tmp_path / "runs", "iso", "--warmup", "20")
    try:
        daemon.wait_running(timeout=90)
        assert _venue(emulator) == (5, "isolated")
        tail = daemon.tail()
        assert "venue margin: /v5/account/set-margin-mode ISOLATED_MARGIN: OK" in tail
        assert "venue margin: /v5/position/set-leverage BTCUSDT 5x: OK" in tail
    finally:
        assert daemon.stop() == 0


def test_the_daemon_refuses_to_trade_when_the_venue_refuses_the_leverage(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    card = _card(tmp_path, "toohigh", "{leverage: 125, maintenance_margin: 0.5%}")
    daemon = DaemonProcess(emulator, card, tmp_path / "runs", "high", "--warmup", "20")
    code = daemon.proc.wait(timeout=90)
    tail = daemon.tail()
    assert code == 2, tail
    assert "did not take the card's margin settings (sim.leverage 125" in tail
    assert "retCode 10001" in tail and "nothing was traded" in tail
    assert "Traceback" not in tail
    assert not daemon.refresh()  # no session was started
