"""`replay demo` runs unattended for minutes against the emulator with faults switched on.

No restarts here: the daemon alone must ride out dropped WebSockets, lost REST
replies, 10006 bursts and a skewed clock, and end with a log that matches the venue.
Minutes are set by REPLAY_SOAK_MINUTES (default 3); behind the soak marker.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cards import ma_cross_card
from tests.test_daemon_crash import HISTORY, check_whole, with_faults
from tools.bybit_emulator import EmulatorHandle, load_candle_file
from tools.daemon_driver import DaemonProcess

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "crypto"


@pytest.mark.soak
def test_demo_rides_out_faults_for_minutes(
    emulator_factory: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    from engine.instrument import BTCUSDT, Instrument

    path = DATA / "bybit_linear_BTCUSDT_5m_20250403_20250702.csv"
    if not path.exists():
        pytest.skip(f"{path} absent")
    minutes = float(os.environ.get("REPLAY_SOAK_MINUTES", "3"))
    candles = load_candle_file(path, Instrument(BTCUSDT))
    emulator = emulator_factory(candles=candles, history=HISTORY)
    card = ma_cross_card(tmp_path, fast=2, slow=5, timeframe="5m", name="soak")
    store = tmp_path / "live"
    daemon = DaemonProcess(
        emulator, card, store, "crashy", "--warmup", str(HISTORY), "--reconcile-every", "10"
    )
    rng = random.Random(3)
    played = faults = 0
    try:
        daemon.wait_warm(HISTORY)
        deadline = time.monotonic() + minutes * 60
        while time.monotonic() < deadline:
            if played % 25 == 0:
                emulator.reset_faults()
                with_faults(emulator, rng)
                faults += 1
            daemon.play(1)
            played += 1
        emulator.reset_faults()
        daemon.play(3)
        assert daemon.stop() == 0, daemon.tail()
    finally:
        daemon.kill()
    assert played > 100 and faults > 4
    check_whole(emulator, daemon, store)
