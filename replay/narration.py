"""One line per candle-close decision and per fill, for a person watching `replay demo/live`.

The daemon calls ``Narrator.after`` once an input and what it derived are in the log and
their commands have gone out (never on the order path). Lines go to stdout, so they stay
apart from the log lines on stderr; ``-q`` turns them off.

    2024-01-01 10:05 close 42,446.5 | flat | enter_long (breakout) -> Buy 0.010 Market
    2024-01-01 10:05 fill Buy 0.010 BTCUSDT @ 42,447.0, fee 0.23 USDT (entry)
    2024-01-01 10:10 close 42,460.0 | long 0.010 | no signal
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from engine.events import (
    CandleClosed,
    EventBase,
    Fill,
    Halted,
    IntentEmitted,
    Liquidated,
    OrderRejected,
    RiskRejected,
    SubmitOrder,
)
from engine.instrument import MONEY_SCALE, Instrument


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


class Narrator:
    """Turns folded steps into short human lines, written by ``write``."""

    def __init__(self, instrument: Instrument, write: Callable[[str], None]) -> None:
        self._instr = instrument
        self._write = write
        self._purpose: dict[str, str] = {}

    def after(self, event: EventBase, derived: Sequence[EventBase], position_lots: int) -> None:
        for d in derived:
            if isinstance(d, SubmitOrder):
                self._purpose[d.client_id] = d.purpose
        line = self.line(event, derived, position_lots)
        if line:
            self._write(line)

    def line(self, event: EventBase, derived: Sequence[EventBase], position_lots: int) -> str:
        """The line for one step ("" when a person need not see it)."""
        i = self._instr
        if isinstance(event, CandleClosed):
            if event.backfill:
                return ""
            side = "long" if position_lots > 0 else "short"
            pos = f"{side} {i.lots_to_qty(abs(position_lots))}" if position_lots else "flat"
            return f"{_when(event.close_ms)} close {i.ticks_to_float(event.close):,} | {pos} | " + (
                _decision(derived, i) or "no signal"
            )
        if isinstance(event, Fill):
            why = self._purpose.get(event.client_id, "not this session's order")
            return (
                f"{_when(event.ts)} fill {event.side} {i.lots_to_qty(event.qty)} {event.symbol} "
                f"@ {i.ticks_to_float(event.price):,}, fee {event.fee / MONEY_SCALE:,.2f} "
                f"{i.spec.quote_coin} ({why})"
            )
        if isinstance(event, Liquidated):
            return (
                f"{_when(event.ts)} LIQUIDATED {event.side} {i.lots_to_qty(event.qty)} "
                f"@ {i.ticks_to_float(event.price):,}"
            )
        if isinstance(event, OrderRejected):
            return f"{_when(event.ts)} order {event.client_id} rejected: {event.reason}"
        halted = [d for d in derived if isinstance(d, Halted)]
        if halted:
            return f"{_when(event.ts)} HALTED: {halted[0].reason}"
        return ""


def _decision(derived: Sequence[EventBase], i: Instrument) -> str:
    parts: list[str] = []
    for d in derived:
        if isinstance(d, IntentEmitted):
            block = f" ({d.intent.block})" if d.intent.block else ""
            parts.append(f"{d.intent.action}{block}")
        elif isinstance(d, RiskRejected):
            parts.append(f"refused: {d.reason}")
        elif isinstance(d, SubmitOrder):
            parts.append(f"-> {d.side} {i.lots_to_qty(d.qty)} {d.order_type}")
        elif isinstance(d, Halted):
            parts.append(f"HALTED: {d.reason}")
    return " ".join(parts)
