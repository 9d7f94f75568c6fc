"""The simulated venue on real Bybit BTCUSDT 5-minute bars (read in place, never copied).

A bracket strategy -- enter at market, then a reduce-only stop 0.7 % away and a
reduce-only target 1 % away -- runs over the first bars of the file, driven exactly as
the backtest runner drives the venue; every venue invariant of test_sim_properties must
hold on real prices and volumes.
"""

from __future__ import annotations

import csv
from datetime import datetime
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN
from pathlib import Path

import pytest

from adapters.sim import SimConfig, SimVenue
from engine.events import BUY, SELL, CandleClosed, Event, Fill, FundingPaid, SubmitOrder
from engine.instrument import BTCUSDT, MONEY_SCALE, Instrument
from tests.test_sim_properties import Run, check_run

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "crypto"
FILE = DATA / "bybit_linear_BTCUSDT_5m_20250403_20250702.csv"
INST = Instrument(BTCUSDT)
BARS = 4_000
PRICE_COLUMNS = ("open", "high", "low", "close")


def load_bars(limit: int) -> list[CandleClosed]:
    if not FILE.exists():
        pytest.skip(f"real candle data absent: {FILE}")
    out: list[CandleClosed] = []
    with FILE.open(newline="") as fh:
        for row in csv.DictReader(fh):
            t = int(datetime.fromisoformat(row["timestamp"]).timestamp() * 1000)
            o, h, lo, c = (
                INST.price_to_ticks(row[k], ROUND_HALF_EVEN)
                for k in ("open", "high", "low", "close")
            )
            vol = INST.qty_to_lots(row["volume"], ROUND_FLOOR)
            out.append(CandleClosed(t + 300_000, "BTCUSDT", "5m", t, t + 300_000, o, h, lo, c, vol))
            if len(out) == limit:
                break
    return out


def bracket_session(bars: list[CandleClosed], config: SimConfig) -> Run:
    v = SimVenue(INST, config, 10_000 * MONEY_SCALE)
    run = Run(v)
    n = 0

    def send(cmd: SubmitOrder, i: int) -> list[Event]:
        run.submits[cmd.client_id] = (i, cmd)
        return v.on_command(cmd)

    for i, bar in enumerate(bars):
        run.bars.append(bar)
        run.per_bar.append(v.on_candle(bar))
        answers: list[Event] = []
        q = v.position.qty
        if q == 0 and not v.orders and i % 12 == 0:
            n += 1
            side = BUY if n % 2 else SELL
            answers += send(SubmitOrder(bar.ts, f"in{n}", "BTCUSDT", side, "Market", 10), i)
        elif q and not v.orders:
            entry = v.position.avg_entry_ticks(INST.notional_unit)
            long = q > 0
            stop = int(entry * (0.993 if long else 1.007))
            target = int(entry * (1.01 if long else 0.99))
            exit_side = SELL if long else BUY
            if (stop < bar.close) == long and (target > bar.close) == long:
                answers += send(
                    SubmitOrder(
                        bar.ts,
                        f"sl{n}",
                        "BTCUSDT",
                        exit_side,
                        "Market",
                        abs(q),
                        trigger_price=stop,
                        trigger_direction=2 if long else 1,
                        reduce_only=True,
                        purpose="stop",
                    ),
                    i,
                )
                answers += send(
                    SubmitOrder(
                        bar.ts,
                        f"tp{n}",
                        "BTCUSDT",
                        exit_side,
                        "Limit",
                        abs(q),
                        price=target,
                        reduce_only=True,
                        purpose="take_profit",
                    ),
                    i,
                )
            else:  # already beyond a bracket level: leave at market
                answers += send(
                    SubmitOrder(
                        bar.ts, f"x{n}", "BTCUSDT", exit_side, "Market", abs(q), reduce_only=True
                    ),
                    i,
                )
        run.answers.append(answers)
    return run


@pytest.mark.parametrize("both_hit", ["worse", "better"])
def test_bracket_strategy_on_real_bars_keeps_every_invariant(both_hit: str) -> None:
    config = SimConfig(both_hit=both_hit, funding_rate_e8=10_000, leverage=20)
    run = bracket_session(load_bars(BARS), config)
    check_run(run)
    fills = [e for evs in run.per_bar for e in evs if isinstance(e, Fill)]
    stops = [f for f in fills if f.client_id.startswith("sl")]
    targets = [f for f in fills if f.client_id.startswith("tp")]
    assert len(stops) > 5 and len(targets) > 5, "the session really traded both exits"
    assert all(not f.is_maker for f in stops) and all(f.is_maker for f in targets)
    assert any(isinstance(e, FundingPaid) for evs in run.per_bar for e in evs)


@pytest.mark.parametrize("both_hit", ["worse", "better"])
def test_a_bar_reaching_both_exits_takes_the_one_both_hit_names(both_hit: str) -> None:
    run = bracket_session(load_bars(BARS), SimConfig(both_hit=both_hit))
    brackets: dict[str, tuple[SubmitOrder, SubmitOrder]] = {}
    for (_, sl), (_, tp) in zip(
        (v for k, v in run.submits.items() if k.startswith("sl")),
        (v for k, v in run.submits.items() if k.startswith("tp")),
    ):
        brackets[sl.client_id[2:]] = (sl, tp)
    decided = 0
    for i, bar in enumerate(run.bars):
        exits = [
            e for e in run.per_bar[i] if isinstance(e, Fill) and e.client_id[:2] in ("sl", "tp")
        ]
        if not exits:
            continue
        sl, tp = brackets[exits[0].client_id[2:]]
        long = sl.side == SELL
        o, hi, lo = bar.open, bar.high, bar.low
        if long:
            both = lo <= sl.trigger_price < o <= tp.price < hi
        else:
            both = hi >= sl.trigger_price > o >= tp.price > lo
        if both:
            decided += 1
            assert exits[0].client_id[:2] == ("sl" if both_hit == "worse" else "tp")
            assert len(exits) == 1  # the other exit was cancelled, not filled
    assert decided >= 1, "the data has bars reaching both exits"
