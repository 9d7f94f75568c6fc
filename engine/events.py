"""Every event replay writes to its log, as one tagged union of frozen msgspec Structs.

Units (see ``engine.instrument``): prices are integer **ticks**, quantities integer
**lots**, money integer **1e-8 quote units** (``MONEY_SCALE``). ``ts`` is always a
Unix time in milliseconds taken from an event (a candle close, a venue timestamp),
never from the engine's clock.

Schema evolution rule -- this module *is* the file format:

* Events are encoded as MessagePack arrays: ``[tag, ts, field1, field2, ...]``.
  The tag is the class name. Never rename a class, never reorder, rename the
  meaning of, or remove a field.
* A new field may only be appended at the end of a class, with a default, so old
  logs (which lack it) still decode. A new event is a new class added to
  ``Event`` (the union) below.
* Nested value types (``Intent``, ``InstrumentSpec``) follow the same rule.

Families, as in DESIGN.md: session, market input, venue input, engine output,
reconciliation. ``INPUT_TYPES`` / ``DERIVED_TYPES`` say which are folded as inputs
and which the engine itself produces (``replay verify`` re-derives the latter).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Union

import msgspec


class EventBase(msgspec.Struct, frozen=True, tag=True, array_like=True, gc=False):
    """Common base: every event carries the time (ms) it describes."""

    ts: int


# --------------------------------------------------------------------------- values


class InstrumentSpec(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A venue's instrument filters, kept as the venue's decimal strings."""

    symbol: str
    tick_size: str
    qty_step: str
    min_qty: str
    min_notional: str = "0"
    max_qty: str = "0"
    base_coin: str = ""
    quote_coin: str = "USDT"
    max_leverage: str = "100"
    # Bybit's ``fundingInterval`` in minutes (8 h for the built-in perpetuals); 0 for an
    # instrument that is not a perpetual: it never pays or receives funding.
    funding_interval: int = 480


class Intent(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """What a strategy wants; the engine's IntentProcessor decides how.

    ``action`` is one of ``ACTIONS``. Price-like fields are in (float) ticks and are
    rounded by the engine to the grid, as documented in engine/README.md; 0 means
    "not given". Sizing: exactly one of ``qty`` (lots), ``equity_pct`` (of equity,
    notional), or ``risk_pct`` (of equity lost if the stop at ``stop_distance``
    ticks is hit) is used for entries and adds; ``reduce_pct`` for reduce.
    """

    action: str
    block: str = ""
    qty: int = 0
    equity_pct: float = 0.0
    risk_pct: float = 0.0
    stop_distance: float = 0.0
    reduce_pct: float = 0.0
    price: float = 0.0
    stop_loss: float = 0.0
    take_profit: float = 0.0
    trail_distance: float = 0.0
    style: str = "market"
    offset: float = 0.0
    timeout_bars: int = 0
    slices: int = 0
    slice_every_bars: int = 0
    slice_every_ms: int = 0
    # place_limit only: "Buy" or "Sell" (a resting limit order has a side that neither
    # the position nor the action implies); "" for every other action.
    side: str = ""


ACTIONS: Final = (
    "enter_long",
    "enter_short",
    "add",
    "reduce",
    "exit",
    "place_limit",
    "set_stop",
    "set_take_profit",
    "trail_stop",
    "cancel_all",
)

# Order statuses: the venue's (Bybit v5 orderStatus) plus the engine's Requested.
REQUESTED: Final = "Requested"
NEW: Final = "New"
PARTIALLY_FILLED: Final = "PartiallyFilled"
FILLED: Final = "Filled"
CANCELLED: Final = "Cancelled"
PARTIALLY_FILLED_CANCELED: Final = "PartiallyFilledCanceled"
REJECTED: Final = "Rejected"
UNTRIGGERED: Final = "Untriggered"
TRIGGERED: Final = "Triggered"
DEACTIVATED: Final = "Deactivated"
OPEN_STATUSES: Final = (REQUESTED, NEW, PARTIALLY_FILLED, UNTRIGGERED, TRIGGERED)
CLOSED_STATUSES: Final = (FILLED, CANCELLED, PARTIALLY_FILLED_CANCELED, REJECTED, DEACTIVATED)

BUY: Final = "Buy"
SELL: Final = "Sell"


# ------------------------------------------------------------------------- session


class SessionStarted(EventBase, frozen=True):
    """First event of every session: enough to make the log self-describing."""

    session_id: str
    mode: str  # "backtest" | "demo" | "live"
    card_text: str
    card_hash: str
    venue: str  # "sim" | "bybit-demo" | "bybit-live" | "emulator"
    instrument: InstrumentSpec
    version: str
    initial_balance: int  # money
    card_path: str = ""
    timeframe: str = "1m"
    settings: dict[str, str] = {}
    params: dict[str, int | float] = {}  # the card's effective ``params:`` values
    # A Python strategy's code (replay.cards.source): import path -> text, its sha256,
    # and the directory it was imported from; empty for cards without a class.
    strategy_source: dict[str, str] = {}
    strategy_hash: str = ""
    strategy_root: str = ""


class SessionStopped(EventBase, frozen=True):
    reason: str = "completed"
    cancel_open: bool = False  # the engine cancels its open orders (``--cancel-on-exit``)


class Checkpoint(EventBase, frozen=True):
    """Hash of the engine state after ``events`` events were folded (derived)."""

    events: int
    state_hash: str


class ClockOffset(EventBase, frozen=True):
    """Venue clock minus local clock, measured at the adapter edge."""

    offset_ms: int
    rtt_ms: int = 0
    samples: int = 1


class Heartbeat(EventBase, frozen=True):
    """Advances engine time when no candle does (live timers); carries nothing else."""


class Halt(EventBase, frozen=True):
    """Kill switch (input): stop new entries, cancel open orders."""

    reason: str
    source: str = "operator"


# -------------------------------------------------------------------------- market


class CandleClosed(EventBase, frozen=True):
    """A closed bar. ``ts`` equals ``close_ms`` (the instant the bar is final)."""

    symbol: str
    timeframe: str  # "1m", "5m", "15m", "1h", "4h", "1d"
    open_ms: int
    close_ms: int
    open: int  # ticks
    high: int
    low: int
    close: int
    volume: int  # lots
    turnover: int = 0  # money
    backfill: bool = False


# --------------------------------------------------------------------------- venue


class OrderAccepted(EventBase, frozen=True):
    client_id: str
    venue_id: str
    status: str = NEW  # New, or Untriggered for a conditional order


class OrderRejected(EventBase, frozen=True):
    client_id: str
    reason: str
    code: int = 0


class OrderTriggered(EventBase, frozen=True):
    client_id: str
    venue_id: str


class OrderAmended(EventBase, frozen=True):
    """The venue's view after an amend; 0 means unchanged/not applicable."""

    client_id: str
    venue_id: str
    qty: int = 0
    price: int = 0
    trigger_price: int = 0


class OrderCancelled(EventBase, frozen=True):
    client_id: str
    venue_id: str
    reason: str = "CancelByUser"


class OrderExpired(EventBase, frozen=True):
    """An IOC/FOK remainder or a venue-side expiry; no further fills."""

    client_id: str
    venue_id: str
    reason: str = ""


class CommandRejected(EventBase, frozen=True):
    """An amend or cancel the venue refused (for example: order already filled)."""

    client_id: str
    command: str  # "amend" | "cancel"
    reason: str
    code: int = 0


class Fill(EventBase, frozen=True):
    """One execution. ``fee`` > 0 is paid, < 0 a rebate. ``exec_id`` is unique per venue."""

    client_id: str
    venue_id: str
    exec_id: str
    symbol: str
    side: str
    price: int
    qty: int
    fee: int
    is_maker: bool = False
    exec_type: str = "Trade"


class FundingPaid(EventBase, frozen=True):
    """A funding settlement on the open position. ``amount`` > 0 is paid by us."""

    symbol: str
    exec_id: str
    amount: int
    rate_e8: int = 0
    mark_price: int = 0


class Liquidated(EventBase, frozen=True):
    """The venue closed the position at the bankruptcy price."""

    symbol: str
    exec_id: str
    side: str
    price: int
    qty: int
    fee: int


class PositionSnapshot(EventBase, frozen=True):
    """The venue's position: signed qty (lots, + long) and cost basis (money)."""

    symbol: str
    qty: int
    entry_value: int
    liq_price: int = 0
    leverage: str = ""


class BalanceSnapshot(EventBase, frozen=True):
    coin: str
    wallet: int  # money
    available: int = 0


# ----------------------------------------------------------------- engine output


class IntentEmitted(EventBase, frozen=True):
    intent: Intent


class SubmitOrder(EventBase, frozen=True):
    """A command to the venue, committed to the log before it is sent."""

    client_id: str
    symbol: str
    side: str
    order_type: str  # "Market" | "Limit"
    qty: int
    price: int = 0  # 0 for market
    trigger_price: int = 0  # > 0 makes it conditional (stop)
    trigger_direction: int = 0  # 1: triggers when price rises to it, 2: falls to it
    time_in_force: str = "GTC"  # GTC | IOC | FOK | PostOnly
    reduce_only: bool = False
    take_profit: int = 0
    stop_loss: int = 0
    purpose: str = ""  # entry, add, reduce, exit, stop, take_profit, slice, ...


class AmendOrder(EventBase, frozen=True):
    """0 in a field means unchanged."""

    client_id: str
    qty: int = 0
    price: int = 0
    trigger_price: int = 0


class CancelOrder(EventBase, frozen=True):
    client_id: str
    reason: str = ""


class RiskRejected(EventBase, frozen=True):
    reason: str
    intent: Intent


class TimerSet(EventBase, frozen=True):
    key: str
    due: int


class TimerFired(EventBase, frozen=True):
    key: str


class TransitionRejected(EventBase, frozen=True):
    """An event the order state machine refused (reported, never applied)."""

    client_id: str
    event: str
    state: str
    reason: str


class Halted(EventBase, frozen=True):
    """The engine acknowledges a halt: no new entries from here on."""

    reason: str


class ProtectionFailed(EventBase, frozen=True):
    """Protection the card asked for cannot exist (derived); the engine closes at market.

    ``reason`` says why (rejected, price already through, amend refused, ...),
    ``client_id`` names the protective order concerned ("" when none was placed, e.g. a
    ``set_stop`` already through the price), ``purpose`` is ``stop`` or ``take_profit``.
    ``close_id`` is the client id of the reduce-only market close the engine sent ("" when
    the venue's armed order itself closes the position at once, or nothing was open).
    """

    reason: str
    client_id: str = ""
    purpose: str = ""
    close_id: str = ""


# ------------------------------------------------------------------ reconciliation


class ReconciliationCorrection(EventBase, frozen=True):
    """A synthetic event from reconciliation (missing fill, vanished order, ...)."""

    kind: str
    client_id: str = ""
    venue_id: str = ""
    detail: str = ""


class ExternalOrder(EventBase, frozen=True):
    """An open order at the venue that this session's log does not know."""

    venue_id: str
    client_id: str
    side: str
    qty: int
    price: int
    status: str


class PositionDrift(EventBase, frozen=True):
    """The venue's position disagrees with the log after all known fills.

    With ``adopt`` the engine takes the venue's quantity and cost basis as its position
    (the balance is not touched); without it the drift is only recorded (the daemon
    then halts trading).
    """

    symbol: str
    local_qty: int
    venue_qty: int
    local_entry_value: int = 0
    venue_entry_value: int = 0
    adopt: bool = False


class ExternalFill(EventBase, frozen=True):
    """An execution on the account of an order this session did not place (a manual
    order, another session's). Logged so it is visible; it never reaches this session's
    orders, position, trades, fees or PnL -- the venue's position then differs from the
    book, which reconciliation reports as ``PositionDrift``."""

    client_id: str
    venue_id: str
    exec_id: str
    symbol: str
    side: str
    price: int
    qty: int
    fee: int
    exec_type: str = "Trade"


Event = Union[
    SessionStarted,
    SessionStopped,
    Checkpoint,
    ClockOffset,
    Heartbeat,
    Halt,
    CandleClosed,
    OrderAccepted,
    OrderRejected,
    OrderTriggered,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    CommandRejected,
    Fill,
    FundingPaid,
    Liquidated,
    PositionSnapshot,
    BalanceSnapshot,
    IntentEmitted,
    SubmitOrder,
    AmendOrder,
    CancelOrder,
    RiskRejected,
    TimerSet,
    TimerFired,
    TransitionRejected,
    Halted,
    ReconciliationCorrection,
    ExternalOrder,
    PositionDrift,
    ExternalFill,
    ProtectionFailed,
]

EVENT_TYPES: Final[tuple[type[EventBase], ...]] = Event.__args__  # type: ignore[attr-defined]
EVENT_BY_NAME: Final[dict[str, type[EventBase]]] = {t.__name__: t for t in EVENT_TYPES}

#: Events the engine produces itself; ``replay verify`` re-derives and compares them.
DERIVED_TYPES: Final[tuple[type[EventBase], ...]] = (
    Checkpoint,
    IntentEmitted,
    SubmitOrder,
    AmendOrder,
    CancelOrder,
    RiskRejected,
    TimerSet,
    TimerFired,
    TransitionRejected,
    Halted,
    ProtectionFailed,
)
#: Everything else is input: folded, never re-derived.
INPUT_TYPES: Final[tuple[type[EventBase], ...]] = tuple(
    t for t in EVENT_TYPES if t not in DERIVED_TYPES
)
COMMAND_TYPES: Final = (SubmitOrder, AmendOrder, CancelOrder)

# One encoder/decoder pair for the whole process (building them is not free).
_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder(Event)


#: Encode one event to its MessagePack bytes (the log's value format): the encoder's own
#: method, so the hot loops (a backtest encodes every event) make one call, not two.
encode: Final[Callable[[EventBase], bytes]] = _encoder.encode


def decode(data: bytes | memoryview) -> Event:
    """Decode one event; raises ``msgspec.DecodeError`` on bytes that are not an event."""
    return _decoder.decode(data)


def encode_into(event: EventBase, buffer: bytearray, offset: int = 0) -> None:
    """Encode into a reusable buffer (for hot loops that want to avoid allocations)."""
    _encoder.encode_into(event, buffer, offset)


def to_dict(event: EventBase) -> dict[str, Any]:
    """A JSON-friendly dict with the tag under ``"type"`` (for --json output and reports)."""
    out: dict[str, Any] = {"type": type(event).__name__}
    out.update(_plain(event))
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, msgspec.Struct):
        return {k: _plain(v) for k, v in msgspec.structs.asdict(value).items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
