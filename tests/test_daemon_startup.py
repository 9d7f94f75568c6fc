"""A slow or absent venue at start-up is retried, then given up on with exit 75 (issue 12 §5)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.cards import ma_cross_card
from tools.bybit_emulator import EmulatorHandle
from tools.daemon_driver import ROOT, DaemonProcess


def test_two_stalled_replies_at_start_are_retried_not_fatal(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """The issue's case: the clock sync's first requests time out (10 s client timeout)."""
    card = ma_cross_card(tmp_path, fast=2, slow=5, timeframe="5m", name="slowstart")
    emulator.set_faults(timeout_next=2, timeout_s=15)
    daemon = DaemonProcess(emulator, card, tmp_path / "runs", "slow", "--warmup", "20")
    try:
        daemon.wait_running(timeout=90)
        assert "connecting to the venue failed" in daemon.tail()  # it did meet the stall
        assert "Traceback" not in daemon.tail()
    finally:
        assert daemon.stop() == 0


def test_a_failing_account_read_at_start_outlasts_the_per_request_retries(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    """8 HTTP 503s on the wallet: more than one request's 6 attempts, so start-up retries."""
    card = ma_cross_card(tmp_path, fast=2, slow=5, timeframe="5m", name="busyvenue")
    emulator.set_faults(http_error_next=8, http_fault_path="/v5/account/wallet-balance")
    daemon = DaemonProcess(emulator, card, tmp_path / "runs", "busy", "--warmup", "20")
    try:
        daemon.wait_running(timeout=90)
        assert "reading the account at start failed" in daemon.tail()
    finally:
        assert daemon.stop() == 0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_venue_is_given_up_after_the_stated_time_with_exit_75(
    tmp_path: Path,
) -> None:
    card = ma_cross_card(tmp_path, fast=2, slow=5, timeframe="5m", name="nowhere")
    env = dict(os.environ, BYBIT_API_KEY="k" * 18, BYBIT_API_SECRET="s" * 36)
    out = subprocess.run(
        [sys.executable, "-c", "from replay.cli import main; main()", "demo", str(card),
         "--venue", "emulator", "--emulator-url", f"http://127.0.0.1:{_closed_port()}",
         "--store", str(tmp_path / "runs"), "--session", "nowhere", "--startup-timeout", "3"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 75, out.stderr
    assert "venue unreachable: connecting to the venue failed" in out.stderr
    assert "in 3 s; last error:" in out.stderr
    assert "retrying in" in out.stderr  # it did retry before giving up
    assert "Traceback" not in out.stderr
