"""A Python strategy's source in ``SessionStarted``; ``verify`` and ``inspect --at`` of such
a session from another directory without the strategy on the path (issue 13)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.events import IntentEmitted, SessionStarted
from eventstore import EventStore
from replay.cards.source import source_hash
from replay.verify import read_session
from tools.bybit_emulator import EmulatorHandle
from tools.daemon_driver import DaemonProcess

ROOT = Path(__file__).resolve().parents[1]

STRATEGY = '''\
"""A test strategy that imports a helper module of its own directory."""

from __future__ import annotations

from typing import Any

from engine.events import Intent

from helpers import EQUITY, crossed


class Breakout:
    def __init__(self, equity_pct: float = EQUITY) -> None:
        self.equity_pct = float(equity_pct)
        self.seen = 0

    def on_bar(self, bar: Any, ctx: Any) -> list[Intent]:
        self.seen += 1
        f = bar.features
        if ctx.position_qty == 0 and crossed(f["fast"], f["slow"]):
            return [Intent("enter_long", block="py_in", equity_pct=self.equity_pct)]
        if ctx.position_qty > 0 and f["fast"] < f["slow"]:
            return [Intent("exit", block="py_out")]
        return []

    def snapshot(self) -> Any:
        return [self.seen]

    def restore(self, state: Any) -> None:
        self.seen = int(state[0])
'''
HELPERS = """\
EQUITY = 30.0


def crossed(fast: float, slow: float) -> bool:
    return fast > slow
"""
CARD = """\
name: pystrat
symbol: BTCUSDT
features:
  fast: {indicator: sma, period: 5}
  slow: {indicator: sma, period: 20}
strategy:
  class: breakout.Breakout
"""


def replay_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it: replay itself importable, the strategy's folder not."""
    main = "import sys; from replay.cli import main; main()"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-c", main, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


@pytest.fixture
def session(tmp_path: Path) -> tuple[Path, Path]:
    """(store, strategy folder) after a backtest of the Python-strategy card."""
    folder = tmp_path / "strats"
    folder.mkdir()
    (folder / "breakout.py").write_text(STRATEGY)
    (folder / "helpers.py").write_text(HELPERS)
    (folder / "card.yaml").write_text(CARD)
    store = tmp_path / "runs"
    out = replay_cli(
        folder, "run", "card.yaml", "--store", str(store), "--session", "py", "--no-report", "-q"
    )
    assert out.returncode == 0, out.stderr
    return store, folder


def started(store: Path) -> SessionStarted:
    with EventStore(store) as s:
        first = next(e for _, e in read_session(s, "py"))
    assert isinstance(first, SessionStarted)
    return first


def test_the_strategy_module_and_its_local_imports_are_logged(
    session: tuple[Path, Path],
) -> None:
    store, folder = session
    ev = started(store)
    assert ev.strategy_source == {"breakout.py": STRATEGY, "helpers.py": HELPERS}
    assert ev.strategy_hash == source_hash(ev.strategy_source) and len(ev.strategy_hash) == 64
    assert Path(ev.strategy_root) == folder.resolve()
    with EventStore(store) as s:
        blocks = [e.intent.block for _, e in read_session(s, "py") if isinstance(e, IntentEmitted)]
    assert blocks.count("py_in") > 3 and "py_out" in blocks  # the class really trades


def test_verify_and_inspect_from_another_directory_use_the_logged_source(
    session: tuple[Path, Path], tmp_path: Path
) -> None:
    store, folder = session
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # the files are where the log says: the source matches, no flag needed
    ok = replay_cli(elsewhere, "verify", "py", "--store", str(store))
    assert ok.returncode == 0 and ok.stdout.startswith("OK py"), ok.stdout + ok.stderr
    # the folder is gone: the logged source runs only when trusted
    folder.rename(tmp_path / "moved")
    refused = replay_cli(elsewhere, "verify", "py", "--store", str(store))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "breakout.py is not on disk here" in refused.stderr
    assert "--trust-logged-code" in refused.stderr and "Traceback" not in refused.stderr
    trusted = replay_cli(elsewhere, "verify", "py", "--store", str(store), "--trust-logged-code")
    assert trusted.returncode == 0 and trusted.stdout.startswith("OK py"), trusted.stderr
    assert "runs its strategy from the source in its log" in trusted.stderr
    at = replay_cli(
        elsewhere, "inspect", "py", "--at", "200", "--store", str(store), "--trust-logged-code"
    )
    assert at.returncode == 0, at.stderr
    assert json.loads(at.stdout)
    no = replay_cli(elsewhere, "inspect", "py", "--at", "200", "--store", str(store))
    assert no.returncode == 2 and "--trust-logged-code" in no.stderr


def test_a_changed_file_on_disk_is_named_and_not_run(
    session: tuple[Path, Path], tmp_path: Path
) -> None:
    store, folder = session
    (folder / "helpers.py").write_text(HELPERS.replace("fast > slow", "fast < slow"))
    refused = replay_cli(tmp_path, "verify", "py", "--store", str(store))
    assert refused.returncode == 2
    assert "helpers.py (on disk: " in refused.stderr and "differs from the logged" in refused.stderr
    # trusted: the logged helpers run, not the edited file, so the session still verifies
    trusted = replay_cli(tmp_path, "verify", "py", "--store", str(store), "--trust-logged-code")
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    assert "differs from the logged source" in trusted.stderr


def test_a_card_without_python_logs_no_source(tmp_path: Path) -> None:
    from tests.cards import ma_cross_card

    card = ma_cross_card(tmp_path)
    store = tmp_path / "runs"
    out = replay_cli(tmp_path, "run", str(card), "--store", str(store), "--session", "py", "-q")
    assert out.returncode == 0, out.stderr
    ev = started(store)
    assert (ev.strategy_source, ev.strategy_hash, ev.strategy_root) == ({}, "", "")


def test_report_runs_no_strategy_code(session: tuple[Path, Path], tmp_path: Path) -> None:
    store, folder = session
    marker = tmp_path / "imported"
    (folder / "breakout.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\nraise SystemExit('must not be imported')\n"
    )
    out = replay_cli(folder, "report", "py", "--store", str(store), "--out", str(tmp_path / "r"))
    assert out.returncode == 0, out.stderr
    assert not marker.exists() and (tmp_path / "r" / "summary.json").exists()


def test_a_daemon_resume_refuses_changed_strategy_code(
    emulator_factory: Callable[..., EmulatorHandle], tmp_path: Path
) -> None:
    folder = tmp_path / "strats"
    folder.mkdir()
    (folder / "breakout.py").write_text(STRATEGY)
    (folder / "helpers.py").write_text(HELPERS)
    card = folder / "card.yaml"
    card.write_text(
        CARD.replace("symbol: BTCUSDT\n", "symbol: BTCUSDT\ntimeframes: {execution: 5m}\n")
    )
    emulator = emulator_factory(history=30)
    store = tmp_path / "live"
    first = DaemonProcess(emulator, card, store, "pyd", "--warmup", "30")
    try:
        first.wait_warm(30)
        assert first.stop() == 0
    finally:
        first.kill()
    logged = next(e for e in first.events if isinstance(e, SessionStarted))
    assert set(logged.strategy_source) == {"breakout.py", "helpers.py"}
    (folder / "helpers.py").write_text(HELPERS.replace("30.0", "40.0"))
    again = DaemonProcess(emulator, card, store, "pyd")
    code = again.proc.wait(60)
    again.kill()
    assert code == 2, again.tail()
    assert "helpers.py differs from the logged source" in again.tail()
