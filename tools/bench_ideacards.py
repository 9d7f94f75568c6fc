"""IdeaCard benchmarks; prints JSON lines ``{"bench": NAME, "per_s": N, ...}``.

For ideacards/ma_cross.yaml and ideacards/mtf_trend.yaml over N (default 1,000,000)
synthetic one-minute candles (a seeded random walk, built before the clock starts):

* ``card_strategy``: the compiled strategy alone (``on_candle`` with a fixed context);
* ``card_engine``: through ``engine.core.step`` (intents become orders; no venue, so
  orders stay Requested and the risk limits refuse some later ones; no log writes);
* ``card_backtest``: the full backtest loop with the simulated venue (no log writes).

mtf_trend is written for 5-minute execution; here it runs on the same 1-minute candles
(its 1h bars are then built from 60 candles each). ``--profile`` adds a cProfile
summary of ma_cross through the engine on stderr.
Usage: ``python tools/bench_ideacards.py [N] [--profile]``.
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from adapters.sim.venue import SimVenue
from engine.core import new_state, step
from engine.events import (
    AmendOrder,
    CancelOrder,
    CandleClosed,
    Event,
    IntentEmitted,
    SessionStarted,
    SubmitOrder,
)
from engine.instrument import BTCUSDT, MONEY_SCALE, Instrument
from engine.strategy import MarketContext
from replay.cards import LoadedCard, load_card

CARDS = Path(__file__).resolve().parents[1] / "ideacards"
T0 = 1_700_006_400_000  # a whole hour
MS = 60_000
BALANCE = 1_000_000 * MONEY_SCALE


def candles(n: int, seed: int = 42) -> list[CandleClosed]:
    """A reproducible random walk of valid 1m candles around 80,000 USDT (ticks of 0.1)."""
    rng = np.random.default_rng(seed)
    close = np.maximum(1000, np.round(800_000 * np.exp(np.cumsum(rng.normal(0, 0.0008, n)))))
    close = close.astype(np.int64)
    open_ = np.concatenate(([800_000], close[:-1]))
    wig = rng.integers(0, 300, (2, n))
    high = np.maximum(open_, close) + wig[0]
    low = np.maximum(1, np.minimum(open_, close) - wig[1])
    vol = rng.integers(1, 200_000, n)
    out = []
    for i, (o, h, lo, c, v) in enumerate(
        zip(open_.tolist(), high.tolist(), low.tolist(), close.tolist(), vol.tolist())
    ):
        om = T0 + i * MS
        out.append(CandleClosed(om + MS, "BTCUSDT", "1m", om, om + MS, o, h, lo, c, v))
    return out


def _started(card: LoadedCard) -> SessionStarted:
    return SessionStarted(
        T0, "bench-ideacards-01", "backtest", card.text, card.hash, "sim", BTCUSDT, "bench",
        BALANCE, card.source, "1m",
    )  # fmt: skip


def _rates(n: int, t0: float, cpu0: float) -> dict[str, Any]:
    """Wall-clock rate, and the rate per CPU second (less distorted on a shared machine)."""
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    return {
        "seconds": round(wall, 3),
        "per_s": round(n / wall),
        "cpu_seconds": round(cpu, 3),
        "per_cpu_s": round(n / cpu) if cpu > 0 else None,
    }


def bench_strategy(card: LoadedCard, cs: list[CandleClosed]) -> dict[str, Any]:
    strategy = card.new_strategy(Instrument(BTCUSDT))
    ctx = MarketContext()
    on_candle = strategy.on_candle
    intents = 0
    t, cpu = time.perf_counter(), time.process_time()
    for c in cs:
        if on_candle(c, ctx):
            intents += 1
    return {**_rates(len(cs), t, cpu), "bars_with_intents": intents}


def bench_engine(card: LoadedCard, cs: list[CandleClosed]) -> dict[str, Any]:
    state = new_state(_started(card), card.new_strategy(Instrument(BTCUSDT)), card.engine_config)
    derived = 0
    intents = 0
    t, cpu = time.perf_counter(), time.process_time()
    for c in cs:
        out = step(state, c)
        if out:
            derived += len(out)
            intents += sum(type(e) is IntentEmitted for e in out)
    return {**_rates(len(cs), t, cpu), "derived": derived, "intents": intents}


def bench_backtest(card: LoadedCard, cs: list[CandleClosed]) -> dict[str, Any]:
    inst = Instrument(BTCUSDT)
    state = new_state(_started(card), card.new_strategy(inst), card.engine_config)
    venue = SimVenue(inst, card.sim_config, BALANCE)
    on_command = venue.on_command
    events = 0

    def fold(ev: Event) -> None:
        nonlocal events
        events += 1
        for d in step(state, ev):
            events += 1
            if type(d) is SubmitOrder or type(d) is AmendOrder or type(d) is CancelOrder:
                for answer in on_command(d):
                    fold(answer)

    t, cpu = time.perf_counter(), time.process_time()
    for c in cs:
        for ev in venue.on_candle(c):
            fold(ev)
        fold(c)
    return {**_rates(len(cs), t, cpu), "events": events, "fills": len(venue.executions())}


def profile(card: LoadedCard, cs: list[CandleClosed]) -> str:
    prof = cProfile.Profile()
    prof.enable()
    bench_engine(card, cs)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(12)
    return buf.getvalue()


def main(argv: list[str]) -> None:
    args = [a for a in argv if not a.startswith("--")]
    n = int(args[0]) if args else 1_000_000
    cs = candles(n)
    for name in ("ma_cross", "mtf_trend"):
        card = load_card(CARDS / f"{name}.yaml")
        for bench, fn in (
            ("card_strategy", bench_strategy),
            ("card_engine", bench_engine),
            ("card_backtest", bench_backtest),
        ):
            row = {"bench": bench, "card": name, "candles": n, **fn(card, cs)}
            print(json.dumps(row), flush=True)
    if "--profile" in argv:
        card = load_card(CARDS / "ma_cross.yaml")
        print(profile(card, cs[: min(n, 300_000)]), file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
