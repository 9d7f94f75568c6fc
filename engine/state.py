"""All mutable engine state in one object, plus its exact serialized form.

``EngineState`` owns everything ``engine.core.step`` may change; nothing else is
touched by the fold. ``StateData`` is its msgspec image (dicts in insertion order,
execution ids as an insertion-ordered list) so that ``snapshot -> restore`` is exact
and the bytes -- hence ``engine.hashing.state_hash`` -- do not depend on
PYTHONHASHSEED.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice
from typing import TYPE_CHECKING, Any, Final

import msgspec

from engine.book import Book
from engine.config import EngineConfig
from engine.events import CandleClosed, InstrumentSpec, Intent
from engine.instrument import Instrument
from engine.orders import Order
from engine.positions import Position
from engine.strategy import MarketContext, Strategy
from engine.timeframes import TimeframeError, tf_ms

if TYPE_CHECKING:
    from engine.intents import IntentProcessor

DAY_MS: Final = 86_400_000
#: Closed orders the engine remembers (to name their status when a late event comes).
MAX_CLOSED_ORDERS: Final = 256


class StateError(ValueError):
    """A state that cannot be built or restored (bad timeframe, foreign snapshot)."""


def timeframe_ms(tf: str) -> int:
    """ "1m" -> 60000, "4h" -> 14400000 (``engine.timeframes.tf_ms``); else ``StateError``."""
    try:
        return tf_ms(tf)
    except TimeframeError as exc:
        raise StateError(f"unknown timeframe {tf!r} ({exc})") from None


class Timer(msgspec.Struct, gc=False):
    """A pending timer: fires (derived ``TimerFired``) at the first event with ts >= due."""

    key: str
    due: int


class Plan(msgspec.Struct, gc=False):
    """An iceberg/TWAP order being worked slice by slice."""

    plan_id: str
    side: str
    remaining: int  # lots not yet sent
    slices_left: int
    slice_lots: int
    every_ms: int
    style: str  # "iceberg" (limit slices) | "twap" (market slices)
    purpose: str
    offset: int  # ticks, for iceberg limit slices
    stop_loss: int = 0
    take_profit: int = 0


class Timeout(msgspec.Struct, gc=False):
    """A resting limit to cancel at bar ``due_bar``; ``then_market`` sends the remainder."""

    due_bar: int
    then_market: bool


class Protection(msgspec.Struct, gc=False):
    """Stop-loss / take-profit (ticks, 0 = none) of an entry or add.

    ``attached``: the levels travel on the order itself (Bybit's ``takeProfit`` /
    ``stopLoss``, ``tpslMode: Full``) and the venue arms them the moment the order fills;
    otherwise the engine places them as its own reduce-only orders after the fill.
    """

    stop_loss: int
    take_profit: int
    attached: bool = False


class EngineState:
    """Everything the fold owns. Build with ``engine.core.new_state``."""

    __slots__ = (
        "account",
        "bars",
        "adds_in_trade",
        "bars_in_trade",
        "last_exit_bar",
        "trades_today",
        "book",
        "checkpoint_every",
        "config",
        "ctx",
        "ctx_dirty",
        "day",
        "day_halted",
        "day_start_equity",
        "exec_bytes",
        "folded",
        "halt_reason",
        "halted",
        "initial_balance",
        "instrument",
        "is_warm",
        "last_close",
        "next_checkpoint",
        "next_day_ms",
        "notional_unit",
        "on_candle",
        "order_seq",
        "plans",
        "position",
        "proc",
        "protect",
        "session_id",
        "spec",
        "stop_id",
        "stop_price",
        "strategy",
        "symbol",
        "tf_ms",
        "timeframe",
        "timeouts",
        "timers",
        "tp_id",
        "tp_price",
        "trail",
        "ts",
    )

    def __init__(
        self,
        session_id: str,
        spec: InstrumentSpec,
        timeframe: str,
        initial_balance: int,
        strategy: Strategy,
        config: EngineConfig,
    ) -> None:
        self.session_id = session_id
        self.spec = spec
        self.instrument = Instrument(spec)
        self.symbol = spec.symbol
        self.notional_unit = self.instrument.notional_unit
        self.timeframe = timeframe
        self.tf_ms = timeframe_ms(timeframe)
        self.initial_balance = initial_balance
        # Canonical form (e.g. an int given for a float field becomes a float), so the
        # state encodes to the same bytes before and after a snapshot round trip.
        config = msgspec.msgpack.decode(msgspec.msgpack.encode(config), type=EngineConfig)
        self.config = config
        self.checkpoint_every = config.checkpoint_every
        self.strategy = strategy
        self.on_candle: Callable[[CandleClosed, MarketContext], list[Intent]] = strategy.on_candle
        self.is_warm: Callable[[], bool] = strategy.is_warm
        self.ctx = MarketContext(equity=initial_balance, balance=initial_balance)
        self.ctx_dirty = True
        # The one local book; ``book`` and ``position`` are its parts for this symbol
        # (the same objects, kept as attributes for the hot path).
        self.account = Book(spec.symbol, self.notional_unit, initial_balance, MAX_CLOSED_ORDERS)
        self.book = self.account.orders
        self.position = self.account.position
        self.ts = 0
        self.last_close = 0  # ticks; 0 until the first execution candle
        self.bars = 0  # execution candles folded
        self.bars_in_trade = 0
        self.adds_in_trade = 0  # fills that grew the current position after it opened
        self.last_exit_bar = 0  # ``bars`` when a position last closed (0: session start)
        self.trades_today = 0  # positions opened (flips included) this UTC day
        self.folded = 0  # input events folded
        self.next_checkpoint = config.checkpoint_every if config.checkpoint_every > 0 else -1
        self.order_seq = 0
        self.timers: list[Timer] = []
        self.plans: dict[str, Plan] = {}
        self.timeouts: dict[str, Timeout] = {}
        self.protect: dict[str, Protection] = {}
        self.stop_price = 0  # desired stop trigger (ticks), 0 = none
        self.tp_price = 0
        self.trail = 0  # trailing distance (ticks), 0 = none
        self.stop_id = ""  # client id of the live stop order
        self.tp_id = ""
        self.halted = False
        self.halt_reason = ""
        self.day = -1  # UTC day index of the last execution candle
        self.next_day_ms = 0  # first ts of the next UTC day: a cheap rollover test
        self.day_start_equity = initial_balance
        self.day_halted = False
        self.exec_bytes = ExecIdBytes()  # what encode_state writes for book.seen_exec
        self.proc: IntentProcessor  # set by engine.core (it needs the finished state)

    # Money is derived by the book, never stored twice; the engine marks at its last close.
    @property
    def balance(self) -> int:
        return self.account.balance

    @property
    def unrealized(self) -> int:
        return self.account.unrealized(self.symbol, self.last_close)

    @property
    def equity(self) -> int:
        return self.account.equity()


class StateData(msgspec.Struct, gc=False):
    """The serialized form of an ``EngineState`` (see module docstring).

    Encoded as a MessagePack map with field names, so ``replay inspect`` can show a
    decoded snapshot as it is; new fields are appended with defaults.
    """

    session_id: str
    spec: InstrumentSpec
    timeframe: str
    initial_balance: int
    config: EngineConfig
    position: Position
    open_orders: "dict[str, Order]"  # noqa: UP037 (quoted: mypyc keeps it for msgspec)
    closed_orders: "dict[str, Order]"  # noqa: UP037 (quoted: mypyc keeps it for msgspec)
    seen_exec: "list[str]"  # noqa: UP037 (quoted: mypyc keeps it for msgspec)
    ts: int
    last_close: int
    bars: int
    bars_in_trade: int
    folded: int
    next_checkpoint: int
    order_seq: int
    timers: "list[Timer]"  # noqa: UP037 (quoted: mypyc keeps it for msgspec)
    plans: "dict[str, Plan]"  # noqa: UP037 (quoted: mypyc keeps it for msgspec)
    timeouts: "dict[str, Timeout]"  # noqa: UP037 (quoted: mypyc keeps it for msgspec)
    protect: "dict[str, Protection]"  # noqa: UP037 (quoted: mypyc keeps it for msgspec)
    stop_price: int
    tp_price: int
    trail: int
    stop_id: str
    tp_id: str
    halted: bool
    halt_reason: str
    day: int
    next_day_ms: int
    day_start_equity: int
    day_halted: bool
    strategy: "Any" = None  # noqa: UP037 (quoted: mypyc keeps it for msgspec)
    adds_in_trade: int = 0
    last_exit_bar: int = 0
    trades_today: int = 0


_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder(StateData)


class ExecIdBytes:
    """The msgpack bytes of ``book.seen_exec`` as a list, extended as ids are added: the
    ids only grow (in insertion order), and a checkpoint every N events would otherwise
    re-encode every id of the session each time."""

    __slots__ = ("count", "data", "ids", "last")

    def __init__(self) -> None:
        self.ids: dict[str, None] | None = None  # the dict the bytes are of
        self.count = 0  # its first ``count`` ids are in ``data``
        self.last = ""  # the last of them
        self.data = bytearray()

    def raw(self, ids: dict[str, None]) -> msgspec.Raw:
        """Exactly ``msgpack.encode(list(ids))``."""
        new = list(islice(ids, self.count - 1, None)) if self.count else list(ids)
        if ids is not self.ids or not new or (self.count and new[0] != self.last):
            # another dict, or ids were removed: the key at ``count - 1`` moved
            self.ids, self.count, self.data = ids, 0, bytearray()
            new = list(ids)
        elif self.count:
            del new[0]
        if new:
            self.data += b"".join(map(_encoder.encode, new))
            self.count, self.last = self.count + len(new), new[-1]
        return msgspec.Raw(_array_header(self.count) + self.data)


def _array_header(n: int) -> bytes:
    """msgpack's shortest array header for ``n`` items (as msgspec writes it)."""
    if n < 16:
        return bytes((0x90 | n,))
    if n < 0x10000:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def to_data(s: EngineState) -> StateData:
    """Capture ``s`` (including ``strategy.snapshot()``) as plain data."""
    return _data(s, list(s.book.seen_exec))


def _data(s: EngineState, seen_exec: list[str] | msgspec.Raw) -> StateData:
    return StateData(
        session_id=s.session_id,
        spec=s.spec,
        timeframe=s.timeframe,
        initial_balance=s.initial_balance,
        config=s.config,
        position=s.position,
        open_orders=s.book.open,
        closed_orders=s.book.closed,
        seen_exec=seen_exec,  # type: ignore[arg-type]  # Raw: the same bytes
        ts=s.ts,
        last_close=s.last_close,
        bars=s.bars,
        bars_in_trade=s.bars_in_trade,
        folded=s.folded,
        next_checkpoint=s.next_checkpoint,
        order_seq=s.order_seq,
        timers=s.timers,
        plans=s.plans,
        timeouts=s.timeouts,
        protect=s.protect,
        stop_price=s.stop_price,
        tp_price=s.tp_price,
        trail=s.trail,
        stop_id=s.stop_id,
        tp_id=s.tp_id,
        halted=s.halted,
        halt_reason=s.halt_reason,
        day=s.day,
        next_day_ms=s.next_day_ms,
        day_start_equity=s.day_start_equity,
        day_halted=s.day_halted,
        strategy=s.strategy.snapshot(),
        adds_in_trade=s.adds_in_trade,
        last_exit_bar=s.last_exit_bar,
        trades_today=s.trades_today,
    )


def encode_state(s: EngineState) -> bytes:
    """The state's canonical bytes (what is hashed and what ``restore`` reads)."""
    return _encoder.encode(_data(s, s.exec_bytes.raw(s.book.seen_exec)))


def decode_state(data: bytes, strategy: Strategy) -> EngineState:
    """Rebuild a state from ``encode_state`` bytes; the strategy is restored in place."""
    try:
        d = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise StateError(f"not an engine state snapshot: {exc}") from exc
    s = EngineState(d.session_id, d.spec, d.timeframe, d.initial_balance, strategy, d.config)
    s.position = s.account.positions[s.symbol] = d.position
    s.book.open = d.open_orders
    s.book.closed = d.closed_orders
    s.book.seen_exec = dict.fromkeys(d.seen_exec)
    s.ts, s.last_close, s.bars, s.bars_in_trade = d.ts, d.last_close, d.bars, d.bars_in_trade
    s.account.mark(s.symbol, d.last_close)
    s.folded, s.next_checkpoint, s.order_seq = d.folded, d.next_checkpoint, d.order_seq
    s.timers, s.plans, s.timeouts, s.protect = d.timers, d.plans, d.timeouts, d.protect
    s.stop_price, s.tp_price, s.trail = d.stop_price, d.tp_price, d.trail
    s.stop_id, s.tp_id = d.stop_id, d.tp_id
    s.halted, s.halt_reason = d.halted, d.halt_reason
    s.day, s.next_day_ms = d.day, d.next_day_ms
    s.day_start_equity, s.day_halted = d.day_start_equity, d.day_halted
    s.adds_in_trade, s.last_exit_bar, s.trades_today = (
        d.adds_in_trade,
        d.last_exit_bar,
        d.trades_today,
    )
    strategy.restore(d.strategy)
    s.ctx_dirty = True
    return s
