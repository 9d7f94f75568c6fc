"""Shared fixtures: a running Bybit v5 emulator on 127.0.0.1.

``emulator`` -- a fresh emulator per test (``tools.bybit_emulator.EmulatorHandle``), serving
the first 2,000 bars of the real 5-minute BTCUSDT file with 100 bars already played (so
``/v5/market/kline`` has a past and the last price is known), 10,000 USDT, the default key pair
``emulator-key`` / ``emulator-secret``, and time advancing ONLY when the test says so:

    def test_something(emulator):
        emulator.rest, emulator.ws_public, emulator.ws_private   # URLs
        emulator.api_key, emulator.api_secret                    # the accepted key pair
        emulator.advance(2)                  # play two candles (klines + fills + private msgs)
        await emulator.step()                # the same from an async test
        emulator.set_faults(lose_reply_next=1, private_duplicate=True)   # see Faults
        emulator.drop_ws("private")          # cut private streams now
        emulator.call(lambda st: st.executions)   # read emulator state on its own loop

``emulator_factory(**config_fields)`` -- the same with other ``EmulatorConfig`` fields (for
example ``balance=..., history=0, speed=20``) and an optional ``candles=`` sequence; every
emulator it made is stopped at teardown.

``bybit_candles`` -- the 2,000 bars themselves (``CandleClosed`` events). Tests needing the
data file are skipped with a reason when /work/shared/data is absent.

pybit against the emulator: ``http = HTTP(api_key=..., api_secret=..., retry_delay=0)`` then
``http.endpoint = emulator.rest``; for WebSockets patch ``pybit.unified_trading.PUBLIC_WSS`` /
``PRIVATE_WSS`` before constructing (see ``pybit_ws_urls`` in tests/test_emulator_ws.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from engine.events import CandleClosed
from engine.instrument import BTCUSDT, Instrument
from tools.bybit_emulator import EmulatorConfig, EmulatorHandle, load_candle_file

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "crypto"
CANDLE_FILE = DATA / "bybit_linear_BTCUSDT_5m_20250403_20250702.csv"
FIXTURE_BARS = 2000
FIXTURE_HISTORY = 100


@functools.cache
def _bars(path: Path, n: int) -> tuple[CandleClosed, ...]:
    return tuple(load_candle_file(path, Instrument(BTCUSDT))[:n])


@pytest.fixture
def bybit_candles() -> Sequence[CandleClosed]:
    if not CANDLE_FILE.exists():
        pytest.skip(f"real candle data absent: {CANDLE_FILE}")
    return _bars(CANDLE_FILE, FIXTURE_BARS)


@pytest.fixture
def emulator_factory(
    bybit_candles: Sequence[CandleClosed],
) -> Iterator[Callable[..., EmulatorHandle]]:
    made: list[EmulatorHandle] = []

    def make(candles: Sequence[CandleClosed] | None = None, **fields: Any) -> EmulatorHandle:
        fields.setdefault("history", FIXTURE_HISTORY)
        handle = EmulatorHandle.start(candles or bybit_candles, EmulatorConfig(**fields))
        made.append(handle)
        return handle

    yield make
    for handle in made:
        handle.stop()


@pytest.fixture
def emulator(emulator_factory: Callable[..., EmulatorHandle]) -> EmulatorHandle:
    return emulator_factory()
