"""Run `replay demo` as a real subprocess against the emulator, and watch its log (tests, benches).

The daemon is driven in lockstep with the emulator's candles: the test plays one
candle, then waits until the daemon has logged that candle and every order it
decided on has been answered by the venue, so fills land on the same candle as
in a backtest.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.events import (
    CandleClosed,
    EventBase,
    OrderAccepted,
    OrderRejected,
    SessionStopped,
    SubmitOrder,
    decode,
)
from eventstore import EventStore, LogCorruptError, StreamNotFound
from tools.bybit_emulator import EmulatorHandle

ROOT = Path(__file__).resolve().parents[1]


def _next_candle(state: Any) -> CandleClosed:
    candle: CandleClosed = state.candles[state.cursor]
    return candle


class DaemonProcess:
    """One `replay demo --venue emulator` process and a reader of its session's log."""

    def __init__(
        self,
        emulator: EmulatorHandle,
        card: Path,
        store: Path,
        session: str,
        *extra: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.emulator = emulator
        self.store = store
        self.session = session
        self.events: list[EventBase] = []
        self.stderr_path = store.parent / f"{session}.stderr.log"
        self.stdout_path = store.parent / f"{session}.stdout.log"  # the per-candle lines
        args = [
            sys.executable, "-c", "from replay.cli import main; main()", "demo", str(card),
            "--venue", "emulator", "--emulator-url", emulator.rest, "--store", str(store),
            "--session", session, "--reconcile-every", "3600", *extra,
        ]  # fmt: skip
        full_env = dict(os.environ)
        full_env.update(BYBIT_API_KEY=emulator.api_key, BYBIT_API_SECRET=emulator.api_secret)
        full_env.update(env or {})
        self._stderr = self.stderr_path.open("ab")
        self.stderr_offset = self._stderr.tell()
        self._stdout = self.stdout_path.open("ab")
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env=full_env, stderr=self._stderr, stdout=self._stdout
        )

    # ------------------------------------------------------------------ reading

    def refresh(self) -> list[EventBase]:
        """Read what the daemon appended since the last call.

        The quick structural check only (``full_check=False``): this polls a file the
        daemon is writing, and the full page walk (a child process, ~0.2 s) on every poll
        made the harness, not the daemon, the bottleneck of every lockstep candle. Tests
        that assert the log is whole run ``replay verify``, which walks the pages."""
        if not (self.store / "data.mdb").exists():
            return self.events
        try:
            with EventStore(self.store, readonly=True, full_check=False) as es:
                stream = es.stream(self.session)
                for _, raw in stream.read(len(self.events) + 1):
                    self.events.append(decode(raw))
        except StreamNotFound:
            pass
        except LogCorruptError:
            if self.events:  # a store we have read before must stay readable
                raise
            # else: the daemon is still creating the file; look again on the next poll
        return self.events

    def wait_for(
        self, what: str, cond: Callable[[list[EventBase]], bool], timeout: float = 20
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond(self.refresh()):
                return
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"daemon exited ({self.proc.returncode}) waiting for {what}: {self.tail()}"
                )
            time.sleep(0.01)
        raise AssertionError(f"timed out waiting for {what}: {self.tail()}")

    def tail(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")[-3000:]

    # ------------------------------------------------------------------ driving

    def wait_running(self, timeout: float = 30) -> None:
        """Until this process has logged that its loop runs (after reconciliation)."""
        start = self.stderr_offset
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._stderr.closed:
                self._stderr.flush()
            if b" running (seq" in self.stderr_path.read_bytes()[start:]:
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited ({self.proc.returncode}): {self.tail()}")
            time.sleep(0.01)
        raise AssertionError(f"daemon not running after {timeout}s: {self.tail()}")

    def wait_warm(self, backfill: int) -> None:
        self.wait_for(
            f"{backfill} back-filled candles",
            lambda evs: sum(isinstance(e, CandleClosed) and e.backfill for e in evs) >= backfill,
        )

    def settled(self, events: list[EventBase], close_ms: int) -> bool:
        """The candle closing at ``close_ms`` is logged and every order has its answer."""
        seen = any(isinstance(e, CandleClosed) and e.close_ms == close_ms for e in events)
        asked = {e.client_id for e in events if isinstance(e, SubmitOrder)}
        answered = {e.client_id for e in events if isinstance(e, OrderAccepted | OrderRejected)}
        return seen and asked <= answered

    def play(self, n: int, pace_s: float = 0.0, quiet_s: float = 0.0) -> None:
        """Play ``n`` candles in lockstep with the daemon, at most one per ``pace_s``.

        ``quiet_s``: after each candle, wait that long before reading the log, so that this
        thread does not compete for the interpreter lock with an emulator in the same
        process while the daemon answers the candle (latency benches)."""
        for _ in range(n):
            if pace_s:
                time.sleep(pace_s)
            candle: CandleClosed = self.emulator.call(_next_candle)
            self.emulator.advance(1)
            if quiet_s:
                time.sleep(quiet_s)
            close_ms = candle.close_ms
            self.wait_for(f"candle {close_ms}", functools.partial(self.settled, close_ms=close_ms))

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, then wait for a clean exit; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        finally:
            self._stderr.close()
            self._stdout.close()
        self.refresh()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._stderr.close()
        self._stdout.close()

    @property
    def stopped_cleanly(self) -> bool:
        return bool(self.events) and isinstance(self.events[-1], SessionStopped)
