"""Shared helpers for the IdeaCard tests: real candles read in place, synthetic ones, a driver.

The real data file is read where it lies (never copied): ticks = round(price * 10),
lots = round(volume * 1000), and the CSV's timestamp is the bar's open time.
"""

from __future__ import annotations

import csv
import itertools
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from adapters.sim.venue import SimVenue
from engine.core import new_state, step
from engine.events import (
    AmendOrder,
    CancelOrder,
    CandleClosed,
    Event,
    Intent,
    SessionStarted,
    SubmitOrder,
    encode,
)
from engine.instrument import BTCUSDT, Instrument
from engine.strategy import MarketContext, Strategy
from replay.cards import LoadedCard

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "crypto"
CSV_5M = DATA / "bybit_linear_BTCUSDT_5m_20250403_20250702.csv"
CARDS = Path(__file__).resolve().parents[1] / "ideacards"
INSTRUMENT = Instrument(BTCUSDT)


def candle(
    open_ms: int, tf_ms: int, o: int, h: int, lo: int, c: int, v: int, tf: str
) -> CandleClosed:
    close_ms = open_ms + tf_ms
    return CandleClosed(close_ms, "BTCUSDT", tf, open_ms, close_ms, o, h, lo, c, v)


@lru_cache(maxsize=1)
def real_5m() -> tuple[CandleClosed, ...]:
    """Every 5-minute candle of the real Bybit file (skips the test if it is absent)."""
    if not CSV_5M.exists():
        pytest.skip(f"real data not found at {CSV_5M}")
    out = []
    with CSV_5M.open(newline="") as fh:
        for row in csv.DictReader(fh):
            open_ms = int(datetime.fromisoformat(row["timestamp"]).timestamp() * 1000)
            o, h, lo, c = (round(float(row[k]) * 10) for k in ("open", "high", "low", "close"))
            out.append(
                candle(open_ms, 300_000, o, h, lo, c, round(float(row["volume"]) * 1000), "5m")
            )
    return tuple(out)


def drive(
    strategy: Strategy,
    candles: tuple[CandleClosed, ...] | list[CandleClosed],
    ctx: MarketContext | None = None,
    first_index: int = 0,
) -> list[tuple[int, Intent]]:
    """Feed candles through the strategy alone with a crude position model in ``ctx``.

    The context follows the intents as if every entry filled at the close (flat ->
    long/short, exit -> flat), so position-gated blocks get exercised without a venue.
    """
    ctx = MarketContext() if ctx is None else ctx
    out: list[tuple[int, Intent]] = []
    for i, c in enumerate(candles, first_index):
        if ctx.position_qty:
            ctx.bars_in_trade += 1
            move = (c.close - ctx.avg_entry) / ctx.avg_entry * 100
            ctx.unrealized_pct = move if ctx.position_qty > 0 else -move
        for it in strategy.on_candle(c, ctx):
            out.append((i, it))
            a = it.action
            if a in ("enter_long", "enter_short", "place_limit"):
                sign = 1 if a == "enter_long" or it.side == "Buy" else -1
                if ctx.position_qty * sign <= 0:
                    ctx.position_qty = sign * 10
                    ctx.avg_entry = float(c.close)
                    ctx.bars_in_trade = 0
            elif a == "add":
                ctx.position_qty += 10 if ctx.position_qty > 0 else -10
            elif a == "exit":
                ctx.position_qty = 0
                ctx.bars_in_trade = 0
                ctx.unrealized_pct = 0.0
    return out


def synthetic(
    seed: int,
    n: int,
    start_ms: int = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000,
    tf_ms: int = 300_000,
    tf: str = "5m",
    price: int = 800_000,
) -> list[CandleClosed]:
    """A reproducible random walk of valid candles (aligned to the hour by default)."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 0.002, n)
    out = []
    c = price
    for i in range(n):
        o = c
        c = max(10, round(o * (1.0 + steps[i])))
        h = max(o, c) + int(rng.integers(0, max(2, o // 500)))
        lo = max(1, min(o, c) - int(rng.integers(0, max(2, o // 500))))
        out.append(
            candle(start_ms + i * tf_ms, tf_ms, o, h, lo, c, int(rng.integers(1, 500_000)), tf)
        )
    return out


def backtest(
    card: LoadedCard,
    candles: list[CandleClosed] | tuple[CandleClosed, ...],
    balance: int = 100_000 * 10**8,
) -> list[list[bytes]]:
    """The lead's backtest loop with the engine and the simulated venue.

    Returns, per candle, the encoded events appended to the log while processing it
    (venue events, the candle, derived events, venue answers), in log order.
    """
    tf = candles[0].timeframe
    started = SessionStarted(
        candles[0].open_ms,
        "ideacard-test-session",
        "backtest",
        card.text,
        card.hash,
        "sim",
        BTCUSDT,
        "test",
        balance,
        card.source,
        tf,
    )
    state = new_state(started, card.new_strategy(INSTRUMENT), card.engine_config)
    venue = SimVenue(INSTRUMENT, card.sim_config, balance)
    per_candle: list[list[bytes]] = []

    def fold(ev: Event, log: list[bytes]) -> None:
        log.append(encode(ev))
        for d in step(state, ev):
            log.append(encode(d))
            if isinstance(d, SubmitOrder | AmendOrder | CancelOrder):
                for answer in venue.on_command(d):
                    fold(answer, log)

    for c in candles:
        log: list[bytes] = []
        for ev in venue.on_candle(c):
            fold(ev, log)
        fold(c, log)
        per_candle.append(log)
    return per_candle


def test_real_data_is_read_in_ticks_and_lots() -> None:
    cs = real_5m()
    first = cs[0]
    # 2025-04-03 17:05 UTC, open 81794.8 -> 817948 ticks, volume 317.956 -> 317956 lots
    assert (first.open, first.volume, first.open_ms % 300_000) == (817948, 317956, 0)
    assert all(b.open_ms == a.close_ms for a, b in itertools.pairwise(cs[:100]))
