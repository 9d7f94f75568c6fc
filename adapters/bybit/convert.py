"""Bybit v5 messages -> engine events, with exact fixed-point numbers.

Two layers:

* stateless functions (``candle_from_kline``, ``execution_event``, ``open_order``,
  ``position_snapshot``, ``balance_snapshots``) turn one Bybit object into one value;
  ``snapshot()`` uses them directly;
* ``StreamConverter`` owns the state a stream needs: which orders were already
  announced, which execIds were already seen (a bounded ordered dict), which candles
  were already closed. It turns the venue's order *statuses* into the engine's order
  *transitions* (``OrderAccepted`` / ``OrderTriggered`` / ``OrderAmended`` /
  ``OrderCancelled`` / ``OrderExpired`` / ``OrderRejected``) exactly once each.

Choices (Bybit leaves them open, see reference §3 and §8):

* ``OrderAccepted`` is emitted once per client id, from the REST ack or the first
  ``order`` message, whichever comes first; a conditional order is accepted as
  ``Untriggered`` and, if the venue already reports it live/filled, followed by
  ``OrderTriggered``. A fill for an order never announced is preceded by a
  synthesised ``OrderAccepted`` (messages can arrive out of order).
* A terminal status (Cancelled, Deactivated, Rejected after acceptance) whose
  ``cumExecQty`` exceeds the fills seen so far is *held* until those fills arrive,
  so the engine never sees a fill after the order's end. ``release_held()`` lets
  reconciliation flush them.
* Cancelled IOC/FOK/Market orders not cancelled by the user become ``OrderExpired``;
  ``Rejected`` (or a PostOnly cancel with nothing filled) before acceptance becomes
  ``OrderRejected`` with Bybit's ``rejectReason``; after acceptance ``OrderCancelled``.
* Fees and funding: ``execFee`` > 0 is paid. Values with more than 8 decimals round
  towards +inf (a paid fee is never under-counted; a rebate rounds towards zero).
* ``execType`` Funding -> ``FundingPaid``; BustTrade / AdlTrade -> ``Liquidated``;
  Delivery / Settle (not used by perpetuals) are logged and skipped; every other
  type with an order behind it -> ``Fill``.
* Orders without an orderLinkId were not placed by us: their order messages produce
  nothing and their executions a bare ``Fill`` with ``client_id=""`` (reconciliation's
  business).
* Unknown fields are ignored; unknown topics produce nothing; a malformed item is
  logged and skipped (the rest of the message is still converted).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Final

import msgspec

from adapters.bybit.config import INTERVALS
from adapters.bybit.errors import MalformedMessage
from adapters.protocol import OpenOrder
from engine.events import (
    BalanceSnapshot,
    CandleClosed,
    Event,
    Fill,
    FundingPaid,
    InstrumentSpec,
    Liquidated,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderTriggered,
    PositionSnapshot,
)
from engine.instrument import Instrument, money_from_str, rate_from_str
from engine.orders import attached_id

log = logging.getLogger(__name__)

TIMEFRAMES: Final[dict[str, str]] = {v: k for k, v in INTERVALS.items()}
_FIXED_MS: Final[dict[str, int]] = {"D": 86_400_000, "W": 7 * 86_400_000}
LIQUIDATION_TYPES: Final = frozenset({"BustTrade", "AdlTrade"})
SKIPPED_EXEC_TYPES: Final = frozenset({"Delivery", "Settle"})
OPEN_STATUSES: Final = frozenset({"New", "PartiallyFilled", "Untriggered", "Triggered"})
END_STATUSES: Final = frozenset({"Cancelled", "PartiallyFilledCanceled", "Deactivated", "Rejected"})
EXPIRING_TIF: Final = frozenset({"IOC", "FOK"})
_NO_REASON: Final = frozenset({"", "UNKNOWN", "EC_NoError"})
_CONVERSION_ERRORS: Final = (
    KeyError,
    ValueError,
    TypeError,
    InvalidOperation,
    AttributeError,
    MalformedMessage,
)


# ----------------------------------------------------------------- field helpers


def _s(item: dict[str, Any], name: str) -> str:
    value = item.get(name)
    return "" if value is None else str(value)


def _ms(item: dict[str, Any], name: str, default: int = 0) -> int:
    text = _s(item, name)
    return int(text) if text else default


def _is_zero(text: str) -> bool:
    return not text or Decimal(text) == 0


def _ticks(inst: Instrument, text: str, exact: bool = True) -> int:
    """A price string to ticks; "" and zero are 0. Off-grid raises unless ``exact`` is off."""
    if _is_zero(text):
        return 0
    return inst.price_to_ticks(text, None if exact else ROUND_HALF_EVEN)


def _lots(inst: Instrument, text: str) -> int:
    return 0 if _is_zero(text) else inst.qty_to_lots(text)


def _fee(text: str) -> int:
    return 0 if not text else money_from_str(text, ROUND_CEILING)


def _money(text: str) -> int:
    return 0 if not text else money_from_str(text, ROUND_HALF_EVEN)


def interval_ms(interval: str) -> int:
    """A kline interval ("1", "60", "D", "W") in ms; "M" (variable length) is refused."""
    if interval.isdigit():
        return int(interval) * 60_000
    if interval in _FIXED_MS:
        return _FIXED_MS[interval]
    raise MalformedMessage("kline", f"unsupported interval {interval!r}")


# ------------------------------------------------------------ stateless functions


def candle_from_kline(inst: Instrument, item: dict[str, Any]) -> CandleClosed | None:
    """A WS kline item -> ``CandleClosed`` if ``confirm`` is true, else None.

    ``ts`` = ``close_ms`` = ``start`` + interval (Bybit's ``end`` is start + interval - 1).
    """
    if item.get("confirm") is not True:
        return None
    interval = _s(item, "interval")
    timeframe = TIMEFRAMES.get(interval)
    if timeframe is None:
        raise MalformedMessage("kline", f"interval {interval!r} has no engine timeframe")
    start = int(item["start"])
    close_ms = start + interval_ms(interval)
    return CandleClosed(
        ts=close_ms,
        symbol=inst.symbol,
        timeframe=timeframe,
        open_ms=start,
        close_ms=close_ms,
        open=inst.price_to_ticks(_s(item, "open")),
        high=inst.price_to_ticks(_s(item, "high")),
        low=inst.price_to_ticks(_s(item, "low")),
        close=inst.price_to_ticks(_s(item, "close")),
        volume=inst.qty_to_lots(_s(item, "volume") or "0"),
        turnover=_money(_s(item, "turnover")),
    )


def candles_from_rest_kline(inst: Instrument, result: dict[str, Any]) -> list[CandleClosed]:
    """``/v5/market/kline`` result (newest first, 7-string rows) -> closed candles, oldest
    first. The caller drops the newest row if it may still be open."""
    interval = _s(result, "interval")
    out: list[CandleClosed] = []
    for row in reversed(result["list"]):
        start = int(row[0])
        step = interval_ms(interval)
        out.append(
            CandleClosed(
                ts=start + step,
                symbol=inst.symbol,
                timeframe=TIMEFRAMES[interval],
                open_ms=start,
                close_ms=start + step,
                open=inst.price_to_ticks(row[1]),
                high=inst.price_to_ticks(row[2]),
                low=inst.price_to_ticks(row[3]),
                close=inst.price_to_ticks(row[4]),
                volume=inst.qty_to_lots(row[5]),
                turnover=_money(row[6]),
                backfill=True,
            )
        )
    return out


def execution_event(
    inst: Instrument, item: dict[str, Any]
) -> Fill | FundingPaid | Liquidated | None:
    """One execution (WS ``execution`` item or REST ``/v5/execution/list`` row)."""
    exec_type = _s(item, "execType") or "Trade"
    exec_id = _s(item, "execId")
    if not exec_id:
        raise MalformedMessage("execution", "no execId")
    ts = _ms(item, "execTime")
    if exec_type in SKIPPED_EXEC_TYPES:
        log.info("skipping %s execution %s on %s", exec_type, exec_id, inst.symbol)
        return None
    if exec_type == "Funding":
        return FundingPaid(
            ts=ts,
            symbol=inst.symbol,
            exec_id=exec_id,
            amount=_fee(_s(item, "execFee")),
            rate_e8=rate_from_str(_s(item, "feeRate") or "0"),
            mark_price=_ticks(inst, _s(item, "execPrice") or _s(item, "markPrice"), exact=False),
        )
    side = _s(item, "side")
    if side not in ("Buy", "Sell"):
        raise MalformedMessage("execution", f"side {side!r}")
    price = _ticks(inst, _s(item, "execPrice"))
    qty = inst.qty_to_lots(_s(item, "execQty"))
    fee = _fee(_s(item, "execFee"))
    if exec_type in LIQUIDATION_TYPES:
        return Liquidated(
            ts=ts, symbol=inst.symbol, exec_id=exec_id, side=side, price=price, qty=qty, fee=fee
        )
    return Fill(
        ts=ts,
        client_id=_s(item, "orderLinkId"),
        venue_id=_s(item, "orderId"),
        exec_id=exec_id,
        symbol=inst.symbol,
        side=side,
        price=price,
        qty=qty,
        fee=fee,
        is_maker=item.get("isMaker") is True,
        exec_type=exec_type,
    )


#: Bybit's stopOrderType of a TP/SL attached to an order -> the engine's purpose.
ARMED_TYPES: Final = {"StopLoss": "stop", "TakeProfit": "take_profit"}


def client_id_of(item: dict[str, Any]) -> str:
    """The engine's client id of an order object: its orderLinkId; for a TP/SL the venue
    armed from an order's attached levels that has none, ``<parentOrderLinkId>-sl|-tp``."""
    link = _s(item, "orderLinkId")
    parent = _s(item, "parentOrderLinkId")
    purpose = ARMED_TYPES.get(_s(item, "stopOrderType"), "")
    if link or not parent or not purpose:
        return link
    return attached_id(parent, purpose)


def open_order(inst: Instrument, item: dict[str, Any]) -> OpenOrder:
    """A REST/WS order object -> ``OpenOrder`` (for snapshots)."""
    market = _s(item, "orderType") == "Market"
    return OpenOrder(
        client_id=client_id_of(item),
        venue_id=_s(item, "orderId"),
        symbol=inst.symbol,
        side=_s(item, "side"),
        order_type=_s(item, "orderType"),
        qty=_lots(inst, _s(item, "qty")),
        filled_qty=_lots(inst, _s(item, "cumExecQty")),
        price=0 if market else _ticks(inst, _s(item, "price")),
        trigger_price=_ticks(inst, _s(item, "triggerPrice")),
        trigger_direction=int(item.get("triggerDirection") or 0),
        status=_s(item, "orderStatus"),
        time_in_force=_s(item, "timeInForce") or "GTC",
        reduce_only=item.get("reduceOnly") is True,
        created_ms=_ms(item, "createdTime"),
        updated_ms=_ms(item, "updatedTime"),
    )


def position_snapshot(inst: Instrument, item: dict[str, Any], ts: int) -> PositionSnapshot:
    """A position (WS ``entryPrice`` or REST ``avgPrice``) -> signed lots and cost basis.

    ``entry_value`` = entry price x size in money, rounded half-even at 1e-8 (Bybit's
    average entry price is itself rounded, so this is the venue's view, not ours).
    """
    size = _s(item, "size") or "0"
    lots = inst.qty_to_lots(size)
    side = _s(item, "side")
    if side == "Sell":
        lots = -lots
    elif side not in ("Buy", "", "None") and lots:
        raise MalformedMessage("position", f"side {side!r}")
    entry = _s(item, "entryPrice") or _s(item, "avgPrice") or "0"
    value = money_from_str(Decimal(entry) * Decimal(size), ROUND_HALF_EVEN)
    return PositionSnapshot(
        ts=_ms(item, "updatedTime", ts) or ts,
        symbol=inst.symbol,
        qty=lots,
        entry_value=value,
        liq_price=_ticks(inst, _s(item, "liqPrice"), exact=False),
        leverage=_s(item, "leverage"),
    )


def balance_snapshots(account: dict[str, Any], ts: int) -> list[BalanceSnapshot]:
    """One wallet account (WS ``wallet`` item / REST ``list[0]``) -> one snapshot per coin.

    ``available`` uses the per-coin (isolated-margin) formula of the docs:
    walletBalance - totalPositionIM - totalOrderIM - locked - bonus, floored at 0;
    the unified account's USD ``totalAvailableBalance`` is not per coin and is not used.
    """
    out: list[BalanceSnapshot] = []
    for coin in account.get("coin") or []:
        wallet = _money(_s(coin, "walletBalance"))
        used = sum(
            _money(_s(coin, f)) for f in ("totalPositionIM", "totalOrderIM", "locked", "bonus")
        )
        out.append(
            BalanceSnapshot(
                ts=ts, coin=_s(coin, "coin"), wallet=wallet, available=max(0, wallet - used)
            )
        )
    return out


# ------------------------------------------------------------------ stateful part


class _Order:
    """What the stream has told the engine about one order so far."""

    __slots__ = (
        "accepted",
        "conditional",
        "ended",
        "filled",
        "held",
        "held_until",
        "price",
        "qty",
        "trigger",
        "triggered",
        "venue_id",
    )

    def __init__(self, venue_id: str = "") -> None:
        self.venue_id = venue_id
        self.accepted = self.triggered = self.ended = self.conditional = False
        self.qty = self.price = self.trigger = 0
        self.filled = 0  # lots seen in Fill events
        self.held: Event | None = None  # terminal event waiting for missing fills
        self.held_until = 0  # cumExecQty (lots) the held event waits for


class StreamConverter:
    """Turns a stream of Bybit messages into engine events, each exactly once."""

    def __init__(self, instruments: dict[str, Instrument], dedupe_size: int = 10_000) -> None:
        self.instruments = instruments
        self._cap = dedupe_size
        self._execs: OrderedDict[str, None] = OrderedDict()
        self._orders: OrderedDict[str, _Order] = OrderedDict()
        self._armed: dict[str, str] = {}  # venue id -> client id of armed TP/SL orders
        self._last_candle: dict[tuple[str, str], int] = {}
        self._last_position: dict[str, PositionSnapshot] = {}
        self._last_balance: dict[str, BalanceSnapshot] = {}
        self.skipped = 0  # malformed items skipped (for tests and metrics)
        self.duplicates = 0  # executions dropped as already seen
        self.last_exec_ms = 0  # newest execTime seen (for reconnect catch-up)

    # -- entry point ---------------------------------------------------------

    def handle(self, msg: dict[str, Any]) -> list[Event]:
        """One decoded WS data message -> events (possibly none). Never raises."""
        topic = msg.get("topic")
        if not isinstance(topic, str):
            return []
        data = msg.get("data")
        if not isinstance(data, list):
            if isinstance(data, dict):
                data = [data]
            else:
                self._skip(topic, "data is not a list")
                return []
        base = topic.split(".", 1)[0]
        msg_ts = _as_int(msg.get("creationTime") or msg.get("ts"))
        out: list[Event] = []
        for item in data:
            if not isinstance(item, dict):
                self._skip(topic, "item is not an object")
                continue
            try:
                if base == "kline":
                    out.extend(self.kline(topic, item))
                elif base == "order":
                    out.extend(self.order(item, msg_ts))
                elif base == "execution":
                    out.extend(self.execution(item))
                elif base == "position":
                    out.extend(self.position(item, msg_ts))
                elif base == "wallet":
                    out.extend(self.wallet(item, msg_ts))
                else:
                    return []  # a topic we do not use: ignored, not an error
            except _CONVERSION_ERRORS as exc:
                self._skip(topic, f"{type(exc).__name__}: {exc}")
        return out

    def _skip(self, topic: str, why: str) -> None:
        self.skipped += 1
        log.warning("skipped malformed %s item: %s", topic, why)

    def _inst(self, item: dict[str, Any], topic: str) -> Instrument | None:
        symbol = _s(item, "symbol")
        inst = self.instruments.get(symbol)
        if inst is None:
            log.debug("ignoring %s item for untracked symbol %r", topic, symbol)
        return inst

    # -- market --------------------------------------------------------------

    def kline(self, topic: str, item: dict[str, Any]) -> list[Event]:
        parts = topic.split(".")
        inst = self.instruments.get(parts[2]) if len(parts) == 3 else None
        if inst is None:
            return []
        candle = candle_from_kline(inst, item)
        if candle is None:
            return []
        key = (candle.symbol, candle.timeframe)
        if candle.open_ms <= self._last_candle.get(key, -1):
            return []  # repeated after a reconnect, or out of order
        self._last_candle[key] = candle.open_ms
        return [candle]

    def last_candle_open(self, symbol: str, timeframe: str) -> int | None:
        """Open time of the newest candle emitted for (symbol, timeframe), if any."""
        return self._last_candle.get((symbol, timeframe))

    def seen_candle(self, symbol: str, timeframe: str, open_ms: int) -> None:
        """The consumer already has candles up to ``open_ms`` (from its log, after a restart):
        back-fills start after it and nothing at or before it is emitted again."""
        key = (symbol, timeframe)
        self._last_candle[key] = max(open_ms, self._last_candle.get(key, -1))

    def backfill(self, candles: list[CandleClosed]) -> list[Event]:
        """REST candles (oldest first) that are newer than anything emitted, in order."""
        out: list[Event] = []
        for candle in candles:
            key = (candle.symbol, candle.timeframe)
            if candle.open_ms > self._last_candle.get(key, -1):
                self._last_candle[key] = candle.open_ms
                out.append(candle)
        return out

    # -- orders --------------------------------------------------------------

    def _track(self, client_id: str, venue_id: str) -> _Order:
        key = client_id or f"venue:{venue_id}"
        tr = self._orders.get(key)
        if tr is None:
            tr = self._orders[key] = _Order(venue_id)
            if len(self._orders) > self._cap:
                self._orders.popitem(last=False)
        elif venue_id and not tr.venue_id:
            tr.venue_id = venue_id
        return tr

    def _accept(self, tr: _Order, client_id: str, ts: int) -> list[Event]:
        if tr.accepted or tr.ended:
            return []
        tr.accepted = True
        status = "Untriggered" if tr.conditional else "New"
        return [OrderAccepted(ts=ts, client_id=client_id, venue_id=tr.venue_id, status=status)]

    def _trigger(self, tr: _Order, client_id: str, ts: int) -> list[Event]:
        if not tr.conditional or tr.triggered or tr.ended:
            return []
        tr.triggered = True
        return [OrderTriggered(ts=ts, client_id=client_id, venue_id=tr.venue_id)]

    def ack_submit(
        self,
        client_id: str,
        venue_id: str,
        conditional: bool,
        ts: int,
        qty: int,
        price: int,
        trigger: int,
    ) -> list[Event]:
        """The REST create answer (or a lookup that found the order): accept it once."""
        tr = self._track(client_id, venue_id)
        if not tr.accepted and not tr.ended:
            tr.conditional = conditional
            tr.qty, tr.price, tr.trigger = qty, price, trigger
        return self._accept(tr, client_id, ts)

    def ack_amend(self, client_id: str, ts: int, qty: int, price: int, trigger: int) -> list[Event]:
        """The REST amend answer: announce the new values now (the WS echo is then a no-op)."""
        tr = self._orders.get(client_id)
        if tr is None or tr.ended:
            return []
        return self._amended(
            tr, client_id, ts, qty or tr.qty, price or tr.price, trigger or tr.trigger
        )

    def _amended(
        self, tr: _Order, client_id: str, ts: int, qty: int, price: int, trigger: int
    ) -> list[Event]:
        changed = (qty != tr.qty, price != tr.price, trigger != tr.trigger)
        if not any(changed):
            return []
        tr.qty, tr.price, tr.trigger = qty, price, trigger
        return [
            OrderAmended(
                ts=ts,
                client_id=client_id,
                venue_id=tr.venue_id,
                qty=qty if changed[0] else 0,
                price=price if changed[1] else 0,
                trigger_price=trigger if changed[2] else 0,
            )
        ]

    def order(self, item: dict[str, Any], msg_ts: int = 0) -> list[Event]:
        """One order object (WS ``order`` item or a REST order row) -> transitions."""
        inst = self._inst(item, "order")
        if inst is None:
            return []
        status = _s(item, "orderStatus")
        client_id, venue_id = client_id_of(item), _s(item, "orderId")
        if client_id and not _s(item, "orderLinkId"):
            self._armed[venue_id] = client_id  # its executions carry only the orderId
        if not status or not venue_id:
            raise MalformedMessage("order", "no orderStatus/orderId")
        if not client_id:
            log.debug("order %s has no orderLinkId: not ours, left to reconciliation", venue_id)
            return []
        ts = _ms(item, "updatedTime", msg_ts) or msg_ts
        qty = _lots(inst, _s(item, "qty"))
        market = _s(item, "orderType") == "Market"
        price = 0 if market else _ticks(inst, _s(item, "price"))
        trigger = _ticks(inst, _s(item, "triggerPrice"))
        cum = _lots(inst, _s(item, "cumExecQty"))
        tr = self._track(client_id, venue_id)
        self._orders.move_to_end(client_id or f"venue:{venue_id}")
        if tr.ended:
            return []  # e.g. the second "Filled" of a cancel/fill race
        out: list[Event] = []
        if not tr.accepted:
            tr.conditional = tr.conditional or trigger > 0
            tr.qty, tr.price, tr.trigger = qty, price, trigger
        reason = _s(item, "rejectReason")
        cancel_type = _s(item, "cancelType")
        unfilled = cum == 0 and tr.filled == 0
        refused = status == "Rejected" or reason not in _NO_REASON
        if status in END_STATUSES and not tr.accepted and unfilled and refused:
            tr.ended = True
            why = reason if reason not in _NO_REASON else cancel_type or status
            return [OrderRejected(ts=ts, client_id=client_id, reason=why)]
        out.extend(self._accept(tr, client_id, ts))
        if status in OPEN_STATUSES or status == "Filled":
            if status != "Untriggered":
                out.extend(self._trigger(tr, client_id, ts))
            out.extend(self._amended(tr, client_id, ts, qty, price, trigger))
            if status == "Filled":
                tr.ended = True  # the fills themselves come from the execution topic
            return out
        if status not in END_STATUSES:
            log.warning("order %s: unknown orderStatus %r ignored", client_id or venue_id, status)
            return out
        tr.ended = True
        end: Event
        expiring = _s(item, "timeInForce") in EXPIRING_TIF or market
        if expiring and cancel_type != "CancelByUser" and status != "Deactivated":
            why = reason if reason not in _NO_REASON else cancel_type
            end = OrderExpired(ts=ts, client_id=client_id, venue_id=venue_id, reason=why)
        else:
            why = cancel_type if cancel_type not in _NO_REASON else (reason or status)
            if why in _NO_REASON:
                why = status
            end = OrderCancelled(ts=ts, client_id=client_id, venue_id=venue_id, reason=why)
        if cum > tr.filled:
            tr.held, tr.held_until = end, cum  # wait for the missing executions
        else:
            out.append(end)
        return out

    # -- executions ----------------------------------------------------------

    def seen(self, exec_id: str) -> bool:
        return exec_id in self._execs

    def execution(self, item: dict[str, Any]) -> list[Event]:
        """One execution -> [OrderAccepted?, OrderTriggered?, Fill, held end?] or []."""
        inst = self._inst(item, "execution")
        if inst is None:
            return []
        exec_id = _s(item, "execId")
        if exec_id in self._execs:
            self.duplicates += 1
            return []
        ev = execution_event(inst, item)
        self._execs[exec_id] = None
        if len(self._execs) > self._cap:
            self._execs.popitem(last=False)
        if ev is None:
            return []
        if isinstance(ev, Fill) and not ev.client_id and ev.venue_id in self._armed:
            ev = msgspec.structs.replace(ev, client_id=self._armed[ev.venue_id])
        self.last_exec_ms = max(self.last_exec_ms, ev.ts)
        if not isinstance(ev, Fill) or not ev.client_id:
            return [ev]  # funding, liquidation, or a fill of an order placed elsewhere
        out: list[Event] = []
        tr = self._track(ev.client_id, ev.venue_id)
        if not tr.accepted and not tr.ended:
            trigger = _ticks(inst, _s(item, "triggerPrice")) if item.get("triggerPrice") else 0
            tr.conditional = (
                tr.conditional
                or trigger > 0
                or _s(item, "stopOrderType")
                not in (
                    "",
                    "UNKNOWN",
                )
            )
            if not tr.qty:
                tr.qty = _lots(inst, _s(item, "orderQty"))
                tr.price = (
                    0
                    if _s(item, "orderType") == "Market"
                    else _ticks(inst, _s(item, "orderPrice"), exact=False)
                )
        out.extend(self._accept(tr, ev.client_id, ev.ts))
        out.extend(self._trigger(tr, ev.client_id, ev.ts))
        out.append(ev)
        tr.filled += ev.qty
        if tr.held is not None and tr.filled >= tr.held_until:
            out.append(tr.held)
            tr.held = None
        return out

    def release_held(self) -> list[Event]:
        """Terminal events still waiting for fills (call after reconciliation caught up)."""
        out: list[Event] = []
        for tr in self._orders.values():
            if tr.held is not None:
                out.append(tr.held)
                tr.held = None
        return out

    def open_client_ids(self) -> list[str]:
        """Client ids of orders announced and not ended (for reconnect catch-up)."""
        return [
            k
            for k, tr in self._orders.items()
            if tr.accepted and not tr.ended and not k.startswith("venue:")
        ]

    # -- account -------------------------------------------------------------

    def position(self, item: dict[str, Any], msg_ts: int = 0) -> list[Event]:
        inst = self._inst(item, "position")
        if inst is None:
            return []
        snap = position_snapshot(inst, item, msg_ts)
        last = self._last_position.get(inst.symbol)
        self._last_position[inst.symbol] = snap
        if last is not None and _same_but_ts(last, snap):
            return []  # Bybit sends a position message on every order change
        return [snap]

    def wallet(self, item: dict[str, Any], msg_ts: int = 0) -> list[Event]:
        out: list[Event] = []
        for snap in balance_snapshots(item, msg_ts):
            last = self._last_balance.get(snap.coin)
            self._last_balance[snap.coin] = snap
            if last is None or not _same_but_ts(last, snap):
                out.append(snap)
        return out


def _same_but_ts(
    a: PositionSnapshot | BalanceSnapshot, b: PositionSnapshot | BalanceSnapshot
) -> bool:
    return msgspec.structs.replace(a, ts=0) == msgspec.structs.replace(b, ts=0)


def _as_int(value: object) -> int:
    try:
        return int(str(value)) if value is not None else 0
    except ValueError:
        return 0


def instrument_spec(item: dict[str, Any]) -> InstrumentSpec:
    """An ``/v5/market/instruments-info`` row -> ``InstrumentSpec`` (venue strings kept)."""
    price = item.get("priceFilter") or {}
    lot = item.get("lotSizeFilter") or {}
    lev = item.get("leverageFilter") or {}
    tick, step = _s(price, "tickSize"), _s(lot, "qtyStep")
    if not tick or not step:
        raise MalformedMessage("instruments-info", f"{_s(item, 'symbol')}: no tickSize/qtyStep")
    return InstrumentSpec(
        symbol=_s(item, "symbol"),
        tick_size=tick,
        qty_step=step,
        min_qty=_s(lot, "minOrderQty") or step,
        min_notional=_s(lot, "minNotionalValue") or "0",
        max_qty=_s(lot, "maxOrderQty") or "0",
        base_coin=_s(item, "baseCoin"),
        quote_coin=_s(item, "quoteCoin") or "USDT",
        max_leverage=_s(lev, "maxLeverage") or "100",
        funding_interval=_funding_minutes(item),
    )


def _funding_minutes(item: dict[str, Any]) -> int:
    """``fundingInterval`` (minutes) of a perpetual; 0 for a dated future (no funding)."""
    if "Perpetual" not in (_s(item, "contractType") or "LinearPerpetual"):
        return 0
    raw = item.get("fundingInterval")
    try:
        minutes = int(raw) if raw not in (None, "") else 480
    except (TypeError, ValueError):
        raise MalformedMessage("instruments-info", f"fundingInterval {raw!r}") from None
    return max(0, minutes)
