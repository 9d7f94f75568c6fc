"""Per-candle stage stamps of the daemon's hot path, for tools/bench_daemon.py (``REPLAY_TRACE=1``).

A stamp is a ``time.perf_counter()`` reading (CLOCK_MONOTONIC: one clock for every process
of the machine), so the bench can put them beside the emulator's own stamps of when the
closing kline left and when the order arrived. One line per live candle that caused
commands, logged once its commands are out (logging never sits between the commit and the
send): ``trace {"close_ms": ..., "dequeued": ..., "barrier": ..., "committed": ...,
"commit_s": ..., "send": ..., "send_cpu_s": ...}``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Final

ENABLED: Final = bool(os.environ.get("REPLAY_TRACE"))
PREFIX: Final = "trace "


class LatencyTrace:
    """The stamps of the candle being folded (nothing is kept when tracing is off)."""

    def __init__(self, enabled: bool = ENABLED) -> None:
        self.enabled = enabled
        self._stamps: dict[str, float] = {}
        self._cpu = 0.0

    def start(self, close_ms: int, dequeued: float) -> None:
        if self.enabled:
            self._stamps = {"close_ms": close_ms, "dequeued": dequeued}
            self._cpu = time.process_time()

    def mark(self, stage: str) -> None:
        """The first time the current candle reached ``stage`` (and the process's CPU
        seconds since the candle was dequeued, as ``<stage>_cpu_s``)."""
        if self.enabled and self._stamps and stage not in self._stamps:
            self._stamps[stage] = time.perf_counter()
            self._stamps[f"{stage}_cpu_s"] = time.process_time() - self._cpu

    def add(self, stage: str, seconds: float) -> None:
        """A duration of the current candle's path (the first one counts)."""
        if self.enabled and self._stamps:
            self._stamps.setdefault(stage, seconds)

    def finish(self, log: logging.Logger) -> None:
        """Log the current candle's stamps if it sent anything, and forget them."""
        stamps, self._stamps = self._stamps, {}
        if self.enabled and "send" in stamps:
            log.info("%s%s", PREFIX, json.dumps(stamps))
