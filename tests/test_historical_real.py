"""The real files in ../shared/data/crypto load with the row counts PROVENANCE.md states.

They are read in place (never copied into the repository); the tests skip when absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adapters.historical import DataError, load_candles
from engine.events import CandleClosed, InstrumentSpec
from engine.instrument import BTCUSDT, Instrument

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "crypto"
BYBIT_5M = DATA / "bybit_linear_BTCUSDT_5m_20250403_20250702.csv"
BYBIT_15M = DATA / "bybit_linear_BTCUSDT_15m_20250403_20250702.csv"
BINANCE_1H = DATA / "binance_spot_BTCUSDT_1h_20180209_20250331.csv"
BINANCEUS_1M = DATA / "binanceus_spot_BTCUSDT_1m_20230301_20230321.csv"
# Binance spot quotes BTCUSDT to 0.01 and reports volume to 6 decimals in these files.
BINANCE_SPOT = InstrumentSpec(
    symbol="BTCUSDT", tick_size="0.01", qty_step="0.000001", min_qty="0.00001"
)

pytestmark = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"real market data not present at {DATA} (see PROVENANCE.md)"
)


def test_bybit_5m_drops_the_open_candle_and_matches_provenance() -> None:
    series = load_candles(BYBIT_5M, BTCUSDT, drop_last_open=True)
    assert len(series) == 25_920 - 1
    assert series.timeframe == "5m"
    # 2025-04-03 17:05 UTC, the first row, stamps the bar's start.
    assert series.start_ms == 1_743_699_900_000
    assert series.close_ms[0] - series.open_ms[0] == 300_000
    # First row: 81794.8,81998.1,81785.2,81804.9,317.956
    first = next(series.events())
    assert isinstance(first, CandleClosed)
    assert (first.open, first.high, first.low, first.close) == (817948, 819981, 817852, 818049)
    assert first.volume == 317_956
    assert first.ts == first.close_ms == 1_743_700_200_000


def test_every_15m_bar_is_the_aggregate_of_its_three_5m_bars() -> None:
    five = load_candles(BYBIT_5M, BTCUSDT, drop_last_open=True)
    fifteen = load_candles(BYBIT_15M, BTCUSDT, drop_last_open=True)
    assert len(fifteen) == 8_640 - 1
    # The 5m file starts at :05, the 15m at :15: align 15m bars on their three 5m parts.
    start = int(np.searchsorted(five.open_ms, fifteen.open_ms[0]))
    n = (len(five) - start) // 3
    n = min(n, len(fifteen))
    assert n > 8_000
    parts = five.take(slice(start, start + 3 * n))
    bars = fifteen.take(slice(0, n))
    assert np.array_equal(parts.open_ms[::3], bars.open_ms)
    assert np.array_equal(parts.open[::3], bars.open)
    assert np.array_equal(parts.close[2::3], bars.close)
    assert np.array_equal(parts.high.reshape(-1, 3).max(axis=1), bars.high)
    assert np.array_equal(parts.low.reshape(-1, 3).min(axis=1), bars.low)
    assert np.array_equal(parts.volume.reshape(-1, 3).sum(axis=1), bars.volume)


def test_binance_1h_gaps_fail_naming_the_first_gap() -> None:
    with pytest.raises(DataError) as err:
        load_candles(BINANCE_1H, BINANCE_SPOT)
    msg = str(err.value)
    assert BINANCE_1H.name in msg and "gap" in msg
    # PROVENANCE: 25 gaps, 88 missing hours; the first long hole is on 2018-06-26.
    assert "2018-06-26" in msg and "25 gap(s), 88 missing" in msg
    assert err.value.row > 1 and err.value.line == err.value.row + 1


def test_binance_1h_fill_adds_the_88_missing_hours() -> None:
    filled = load_candles(BINANCE_1H, BINANCE_SPOT, gaps="fill")
    assert len(filled) == 62_482 + 88
    assert np.all(np.diff(filled.open_ms) == 3_600_000)
    skipped = load_candles(BINANCE_1H, BINANCE_SPOT, gaps="skip")
    assert len(skipped) == 62_482
    # Filled bars are flat at the previous close with no volume.
    flat = np.flatnonzero(filled.volume == 0)
    assert len(flat) >= 88
    inserted = np.setdiff1d(filled.open_ms, skipped.open_ms, assume_unique=True)
    assert len(inserted) == 88
    k = int(np.searchsorted(filled.open_ms, inserted[0]))
    assert filled.volume[k] == 0
    assert (
        filled.open[k] == filled.high[k] == filled.low[k] == filled.close[k] == filled.close[k - 1]
    )
    # 2024-01-01 00:00 opens at 42283.58 (Binance's UTC daily open, per PROVENANCE).
    day = int(np.searchsorted(filled.open_ms, 1_704_067_200_000))
    assert filled.open[day] == 4_228_358


def test_binance_prices_are_off_the_bybit_grid_unless_rounding_is_asked() -> None:
    with pytest.raises(DataError, match=r"line 2 \(data row 1\).*tick grid.*8333\.98"):
        load_candles(BINANCE_1H, BTCUSDT, gaps="skip")
    rounded = load_candles(BINANCE_1H, BTCUSDT, gaps="skip", round_prices=True)
    assert rounded.open[0] == 83340  # 8333.98 -> 8334.0


def test_binanceus_1m_has_no_gaps() -> None:
    series = load_candles(BINANCEUS_1M, BINANCE_SPOT)
    assert len(series) == 30_240
    assert series.timeframe == "1m"
    assert series.end_ms - series.start_ms == 21 * 86_400_000


@pytest.mark.parametrize("path", [BYBIT_5M, BYBIT_15M, BINANCE_1H, BINANCEUS_1M])
def test_every_real_bar_is_consistent_and_events_stream_in_order(path: Path) -> None:
    inst = Instrument(BTCUSDT if "bybit" in path.name else BINANCE_SPOT)
    series = load_candles(path, inst, gaps="skip", drop_last_open="bybit" in path.name)
    assert np.all(series.high >= np.maximum(series.open, series.close))
    assert np.all(series.low <= np.minimum(series.open, series.close))
    stamps = [e.ts for e in series.events()]
    assert stamps == series.close_ms.tolist()
