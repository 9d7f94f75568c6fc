"""``replay demo --set``: the daemon runs a card's params with overrides, logs the effective
values, refuses bad ones before connecting, and keeps a session's params on resume."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from engine.events import SessionStarted
from tools.bybit_emulator import EmulatorHandle
from tools.daemon_driver import DaemonProcess

ROOT = Path(__file__).resolve().parents[1]
CARD = """\
name: demo_params
symbol: BTCUSDT
timeframes:
  execution: 5m
params:
  fast: {default: 5, min: 2, max: 50}
  slow: 20
features:
  f: {indicator: sma, period: "${fast}"}
  s: {indicator: sma, period: "${slow}"}
blocks:
  - when: {cross_above: [f, s]}
    then: {enter_long: {equity_pct: 20}}
  - when: {cross_below: [f, s]}
    then: exit
"""


def test_demo_set_overrides_params_and_resume_keeps_them(
    emulator_factory: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    card = tmp_path / "card.yaml"
    card.write_text(CARD)
    emulator = emulator_factory(history=40)
    store = tmp_path / "live"
    daemon = DaemonProcess(emulator, card, store, "d1", "--warmup", "40", "--set", "fast=7")
    try:
        daemon.wait_warm(40)
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    started = [e for e in daemon.events if isinstance(e, SessionStarted)]
    assert started[0].params == {"fast": 7, "slow": 20}
    other = DaemonProcess(emulator, card, store, "d1", "--set", "fast=9")
    code = other.proc.wait(60)
    other.kill()
    tail = other.tail()
    assert code == 2, tail
    assert "runs with params fast=7 slow=20" in tail and "--set asks for fast=9" in tail


def test_demo_refuses_a_bad_set_before_connecting(tmp_path: Path) -> None:
    card = tmp_path / "card.yaml"
    card.write_text(CARD)
    base = [sys.executable, "-c", "from replay.cli import main; main()", "demo", str(card)]
    base += ["--venue", "emulator", "--emulator-url", "http://127.0.0.1:9", "--session", "x"]
    base += ["--store", str(tmp_path / "s"), "--startup-timeout", "0"]
    for extra, words in [
        (["--set", "fast=1"], "below the minimum"),
        (["--set", "fats=7"], "did you mean"),
        (["--set", "fast"], "NAME=VALUE"),
    ]:
        proc = subprocess.run([*base, *extra], capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 2, proc.stderr
        assert words in proc.stderr and "Traceback" not in proc.stderr
