"""Lagged values for card expressions: ``close[1]``, ``dc.upper[3]`` (n execution bars back).

One ring buffer per lagged name, as long as the largest lag asked of it plus one. The
plan pushes every buffer once per execution bar, after the indicators and resamplers
saw the bar and only once they are all warm, so a lagged value is always a value the
card could have read on that earlier bar (no lookahead). The plan is not warm until
every buffer is full: the lookback is part of the warm-up. ``name[0]`` is ``name``.
Lags count execution bars, on every timeframe (``close_1h[1]`` is the 1h close as it
stood one execution bar ago). The buffers are plain lists of floats, snapshotted whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

MAX_LAG: Final = 500


class Lags:
    """Ring buffers of the lagged names of one plan."""

    __slots__ = ("_getters", "_index", "_bufs", "_pos", "_count", "_size")

    def __init__(self) -> None:
        self._getters: list[Callable[[], Any]] = []
        self._index: dict[str, int] = {}
        self._bufs: list[list[float]] = []
        self._size = 0  # the longest buffer: bars needed before every lag exists
        self._pos = -1  # slot of the newest value (all buffers share one bar count)
        self._count = 0  # bars pushed

    def getter(self, name: str, source: Callable[[], Any], n: int) -> Callable[[], float]:
        """A getter of ``name`` n bars back (0 <= n <= MAX_LAG, checked by the caller)."""
        i = self._index.get(name)
        if i is None:
            i = len(self._bufs)
            self._index[name] = i
            self._getters.append(source)
            self._bufs.append([])
        need = n + 1
        if need > self._size:
            self._size = need
        bufs = self._bufs

        def get() -> float:
            buf = bufs[i]
            return buf[(self._pos - n) % len(buf)] if self._count > n else math.nan

        return get

    def seal(self) -> None:
        """Give every buffer the common length (call once, after compiling)."""
        for b in self._bufs:
            b[:] = [math.nan] * self._size

    @property
    def active(self) -> bool:
        return bool(self._bufs)

    @property
    def full(self) -> bool:
        return self._count >= self._size

    def push(self) -> None:
        pos = (self._pos + 1) % self._size
        self._pos = pos
        self._count += 1
        for g, buf in zip(self._getters, self._bufs):
            buf[pos] = float(g())

    def snapshot(self) -> list[Any]:
        return [self._pos, self._count, [list(b) for b in self._bufs]]

    def restore(self, state: list[Any]) -> None:
        pos, count, bufs = state
        if len(bufs) != len(self._bufs) or any(len(b) != self._size for b in bufs):
            raise ValueError("lag state does not match the plan's lagged names")
        self._pos = int(pos)
        self._count = int(count)
        for mine, theirs in zip(self._bufs, bufs):
            mine[:] = [float(x) for x in theirs]
