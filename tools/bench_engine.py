"""Engine fold benchmarks; prints JSON lines ``{"bench": NAME, "per_s": N, ...}``.

(a) ``engine_candles``: CandleClosed events through ``engine.core.step`` with the
    NullStrategy (aim: >= 1,000,000 candles/s).
(b) ``engine_fills``: a fill-heavy session -- a market order every few candles, its
    acceptance and fills (two partials), replayed as a log through ``step`` (aim:
    >= 300,000 events/s). The log is recorded once (venue played by a tiny in-process
    stand-in), then timed as a pure re-fold, which is what ``replay verify`` does.

All events are built before the clock starts. Usage: ``python tools/bench_engine.py [N]``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from engine.config import EngineConfig, RiskLimits
from engine.core import new_state, step
from engine.events import (
    CandleClosed,
    Event,
    Fill,
    Intent,
    OrderAccepted,
    SessionStarted,
    SubmitOrder,
)
from engine.instrument import BTCUSDT, MONEY_SCALE, Instrument, fee_for
from engine.strategy import MarketContext, NullStrategy

T0 = 1_700_006_400_000


def _started() -> SessionStarted:
    return SessionStarted(
        ts=T0,
        session_id="bench-session-0001",
        mode="backtest",
        card_text="",
        card_hash="",
        venue="sim",
        instrument=BTCUSDT,
        version="bench",
        initial_balance=100_000 * MONEY_SCALE,
        timeframe="1m",
    )


def _candles(n: int) -> list[CandleClosed]:
    out = []
    price = 500_000
    for i in range(n):
        price += (i * 7919) % 201 - 100
        out.append(
            CandleClosed(
                ts=T0 + (i + 1) * 60_000,
                symbol="BTCUSDT",
                timeframe="1m",
                open_ms=T0 + i * 60_000,
                close_ms=T0 + (i + 1) * 60_000,
                open=price,
                high=price + 50,
                low=price - 50,
                close=price,
                volume=1_000,
            )
        )
    return out


class _Flipper:
    """Enters long / exits alternately every ``every`` bars."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.bar = 0
        self.enter = [Intent("enter_long", qty=20)]
        self.exit = [Intent("exit")]

    def on_candle(self, candle: CandleClosed, ctx: MarketContext) -> list[Intent]:
        self.bar += 1
        if self.bar % self.every:
            return []
        return self.exit if ctx.position_qty else self.enter

    def is_warm(self) -> bool:
        return True

    def snapshot(self) -> Any:
        return self.bar

    def restore(self, state: Any) -> None:
        self.bar = state


def bench_candles(n: int) -> dict[str, Any]:
    candles = _candles(n)
    state = new_state(_started(), NullStrategy(), EngineConfig())
    t = time.perf_counter()
    for c in candles:
        step(state, c)
    dt = time.perf_counter() - t
    return {"bench": "engine_candles", "per_s": round(n / dt), "n": n, "seconds": round(dt, 3)}


def _record_fill_log(n_candles: int, every: int) -> list[Event]:
    """Run once with a stand-in venue: market orders fill at the next candle's open."""
    inst = Instrument(BTCUSDT)
    strat = _Flipper(every)
    config = EngineConfig(risk=RiskLimits(max_leverage=0))
    state = new_state(_started(), strat, config)
    pending: list[SubmitOrder] = []
    log: list[Event] = []
    n_exec = 0
    for c in _candles(n_candles):
        for cmd in pending:
            for part in (cmd.qty // 2, cmd.qty - cmd.qty // 2):
                n_exec += 1
                fee = fee_for(c.open * part * inst.notional_unit, 55_000)
                fill = Fill(c.ts - 1, cmd.client_id, "v" + cmd.client_id, f"x{n_exec}",
                          cmd.symbol, cmd.side, c.open, part, fee)  # fmt: skip
                log.append(fill)
                step(state, fill)
        pending = []
        todo: list[Event] = [c]
        while todo:
            ev = todo.pop(0)
            log.append(ev)
            for d in step(state, ev):
                if type(d) is SubmitOrder:
                    pending.append(d)
                    todo.append(OrderAccepted(d.ts, d.client_id, "v" + d.client_id))
    return log


def bench_fills(n_candles: int, every: int = 4) -> dict[str, Any]:
    log = _record_fill_log(n_candles, every)
    state = new_state(_started(), _Flipper(every), EngineConfig(risk=RiskLimits(max_leverage=0)))
    derived = 0
    t = time.perf_counter()
    for ev in log:
        derived += len(step(state, ev))
    dt = time.perf_counter() - t
    fills = sum(1 for e in log if type(e) is Fill)
    return {
        "bench": "engine_fills",
        "per_s": round(len(log) / dt),
        "events": len(log),
        "fills": fills,
        "derived": derived,
        "seconds": round(dt, 3),
    }


def main(argv: list[str]) -> None:
    n = int(argv[1]) if len(argv) > 1 else 1_000_000
    print(json.dumps(bench_candles(n)), flush=True)
    print(json.dumps(bench_fills(max(n // 5, 1000))), flush=True)


if __name__ == "__main__":
    main(sys.argv)
