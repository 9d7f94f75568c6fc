"""`replay data fetch` against the project's Bybit emulator (tools/bybit_emulator).

The emulator serves the candles it has played through /v5/market/kline exactly as
Bybit does; pybit is the client. The fetched file must load back to the same candles.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from adapters.historical import CandleSeries, generate, load_candles
from engine.instrument import BTCUSDT
from replay.commands.data import data

emulator = pytest.importorskip("tools.bybit_emulator")

N = 2_345  # three pages of up to 1000


@pytest.fixture(scope="module")
def played() -> Iterator[tuple[Any, CandleSeries]]:
    series = generate(seed=21, n=N)
    config = emulator.EmulatorConfig(history=N)
    handle = emulator.EmulatorHandle.start(list(series.events()), config)
    try:
        yield handle, series
    finally:
        handle.stop()


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M")


def test_fetch_from_the_emulator_round_trips(
    played: tuple[Any, CandleSeries], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    handle, series = played
    out = tmp_path / "emu.csv"
    args = ["fetch", "BTCUSDT", "--interval", "1", "--start", iso(series.start_ms)]
    args += ["--end", iso(series.end_ms), "--out", str(out), "--base-url", handle.rest, "-q"]
    result = CliRunner().invoke(data, args)
    assert result.exit_code == 0, result.output
    back = load_candles(out, BTCUSDT)
    assert back.equals(series)


def test_emulator_refuses_an_unknown_symbol_with_exit_2(
    played: tuple[Any, CandleSeries], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    handle, series = played
    args = ["fetch", "ETHUSDT", "--start", iso(series.start_ms), "--end", iso(series.end_ms)]
    args += ["--out", str(tmp_path / "x.csv"), "--base-url", handle.rest]
    result = CliRunner().invoke(data, args)
    assert result.exit_code == 2
    assert "symbol invalid" in result.output
