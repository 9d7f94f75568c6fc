"""Shared helpers for the engine tests: a session, candles, a scripted strategy, and a
``Desk`` that plays the venue by hand (what the venue would say), folding every answer.

No tests live here; the story and property tests import these.
"""

from __future__ import annotations

from typing import Any

from engine.config import EngineConfig, RiskLimits
from engine.core import new_state, step
from engine.events import (
    BUY,
    CandleClosed,
    Event,
    Fill,
    Intent,
    OrderAccepted,
    OrderCancelled,
    OrderTriggered,
    SessionStarted,
    SubmitOrder,
)
from engine.instrument import BTCUSDT, MONEY_SCALE, Instrument, fee_for
from engine.orders import attached_id
from engine.state import EngineState
from engine.strategy import MarketContext

T0 = 1_700_006_400_000  # a UTC midnight, ms
MINUTE = 60_000
INITIAL = 10_000 * MONEY_SCALE  # 10,000 USDT
INSTRUMENT = Instrument(BTCUSDT)
UNIT = INSTRUMENT.notional_unit
TAKER_E8 = 55_000
MAKER_E8 = 20_000


def started(session_id: str = "sess-0123456789abcdef", balance: int = INITIAL) -> SessionStarted:
    return SessionStarted(
        ts=T0,
        session_id=session_id,
        mode="backtest",
        card_text="",
        card_hash="",
        venue="sim",
        instrument=BTCUSDT,
        version="test",
        initial_balance=balance,
        timeframe="1m",
    )


def candle(i: int, close: int, *, high: int = 0, low: int = 0, backfill: bool = False) -> Any:
    """The i-th closed 1m bar (closing at T0 + (i+1) minutes)."""
    return CandleClosed(
        ts=T0 + (i + 1) * MINUTE,
        symbol="BTCUSDT",
        timeframe="1m",
        open_ms=T0 + i * MINUTE,
        close_ms=T0 + (i + 1) * MINUTE,
        open=close,
        high=high or close + 10,
        low=low or close - 10,
        close=close,
        volume=1_000,
        backfill=backfill,
    )


class Scripted:
    """A strategy that emits the intents scripted for each bar number (0-based)."""

    def __init__(self, script: dict[int, list[Intent]] | None = None, warm_after: int = 0) -> None:
        self.script = script or {}
        self.bar = 0
        self.warm_after = warm_after
        self.seen: list[MarketContext] = []

    def on_candle(self, candle: CandleClosed, ctx: MarketContext) -> list[Intent]:
        intents = self.script.get(self.bar, [])
        self.bar += 1
        self.seen.append(MarketContext(**{f: getattr(ctx, f) for f in ctx.__struct_fields__}))
        return intents

    def is_warm(self) -> bool:
        return self.bar > self.warm_after

    def snapshot(self) -> Any:
        return self.bar

    def restore(self, state: Any) -> None:
        self.bar = int(state)


def risk(**kw: Any) -> EngineConfig:
    return EngineConfig(risk=RiskLimits(**kw))


class Desk:
    """An engine plus a hand-played venue: every event goes through ``step`` and is logged."""

    def __init__(
        self,
        script: dict[int, list[Intent]] | None = None,
        config: EngineConfig | None = None,
        strategy: Any = None,
    ) -> None:
        self.strategy = strategy if strategy is not None else Scripted(script)
        self.state: EngineState = new_state(started(), self.strategy, config or EngineConfig())
        self.log: list[Event] = []
        self.derived: list[Event] = []
        self.bar = 0
        self.exec_n = 0
        self.ts = T0

    def feed(self, ev: Any) -> list[Any]:
        self.log.append(ev)
        out = step(self.state, ev)
        self.log.extend(out)
        self.derived.extend(out)
        return out

    def close(self, price: int, **kw: Any) -> list[Any]:
        """Fold the next candle closing at ``price``."""
        c = candle(self.bar, price, **kw)
        self.bar += 1
        self.ts = c.ts
        return self.feed(c)

    def now(self) -> int:
        self.ts += 1
        return self.ts

    def accept(self, cmd: SubmitOrder) -> list[Any]:
        status = "Untriggered" if cmd.trigger_price else "New"
        return self.feed(OrderAccepted(self.now(), cmd.client_id, "v-" + cmd.client_id, status))

    def trigger(self, cmd: SubmitOrder) -> list[Any]:
        return self.feed(OrderTriggered(self.now(), cmd.client_id, "v-" + cmd.client_id))

    def cancelled(self, client_id: str, reason: str = "CancelByUser") -> list[Any]:
        return self.feed(OrderCancelled(self.now(), client_id, "v-" + client_id, reason))

    def armed(self, parent: SubmitOrder, purpose: str) -> SubmitOrder:
        """The stop (``purpose="stop"``) or target the venue armed from ``parent``'s attached
        levels, accepted by the venue; as a command, so the other helpers take it."""
        order = self.state.book.get(attached_id(parent.client_id, purpose))
        assert order is not None and order.parent == parent.client_id
        cmd = SubmitOrder(
            ts=order.created_ts,
            client_id=order.client_id,
            symbol=order.symbol,
            side=order.side,
            order_type="Market",
            qty=order.qty,
            trigger_price=order.trigger_price,
            trigger_direction=order.trigger_direction,
            reduce_only=True,
            purpose=purpose,
        )
        self.accept(cmd)
        return cmd

    def fill(
        self, cmd: SubmitOrder, qty: int, price: int, maker: bool = False, exec_id: str = ""
    ) -> list[Any]:
        self.exec_n += 1
        fee = fee_for(price * qty * UNIT, MAKER_E8 if maker else TAKER_E8)
        return self.feed(
            Fill(
                ts=self.now(),
                client_id=cmd.client_id,
                venue_id="v-" + cmd.client_id,
                exec_id=exec_id or f"e{self.exec_n}",
                symbol=cmd.symbol,
                side=cmd.side,
                price=price,
                qty=qty,
                fee=fee,
                is_maker=maker,
            )
        )


def of_type(events: list[Event], kind: type) -> list[Any]:
    return [e for e in events if type(e) is kind]


def submits(events: list[Event]) -> list[SubmitOrder]:
    return of_type(events, SubmitOrder)


def signed(side: str, qty: int) -> int:
    return qty if side == BUY else -qty
