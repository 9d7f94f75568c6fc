"""The emulated account: the candle cursor, the matching engine, and Bybit-shaped records.

``EmulatorState`` is plain synchronous state, driven only from the server's event loop. Order
writes are translated into the engine's commands (``orderLinkId`` -> ``client_id``; one is
generated when absent), handed to the matching engine, and the events it returns are folded
into ``OrderRecord``/``ExecRecord`` objects and into private messages (``PrivateMsg``) for the
WebSocket hub.

Clocks: the *server clock* (wall clock plus any skew fault) signs and stamps REST envelopes;
*market time* (the close of the last candle played) stamps everything the venue does --
order created/updated times, execution times, kline bars -- exactly as a backtest of the same
candles would, so the two can be compared event for event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.sim.config import SimConfig
from engine.events import (
    BUY,
    SELL,
    AmendOrder,
    CancelOrder,
    CandleClosed,
    CommandRejected,
    EventBase,
    OrderAccepted,
    OrderCancelled,
    OrderRejected,
    SubmitOrder,
)
from engine.instrument import Instrument

from . import params as P
from .errors import ApiError, param_error
from .faults import Faults
from .ledger import Ledger, PrivateMsg
from .matching import Venue
from .records import OrderRecord
from .wire import PositionView, order_obj, position_obj, wallet_obj

TIFS = ("GTC", "IOC", "FOK", "PostOnly")
#: An armed TP/SL's purpose -> Bybit's stopOrderType.
_STOP_TYPE = {"stop": "StopLoss", "take_profit": "TakeProfit"}


def _tpsl(inst: Instrument, p: dict[str, Any]) -> tuple[int, int]:
    """(takeProfit, stopLoss) ticks of an order; only tpslMode Full and LastPrice triggers
    are emulated (Partial / limit TP/SL and Mark/Index triggers: 10001)."""
    tp, sl = P.ticks(inst, p, "takeProfit"), P.ticks(inst, p, "stopLoss")
    if not (tp or sl):
        return 0, 0
    if (P.text(p, "tpslMode") or "Full") != "Full":
        raise param_error("tpslMode: only Full is supported by the emulator")
    for key in ("tpTriggerBy", "slTriggerBy"):
        if (P.text(p, key) or "LastPrice") != "LastPrice":
            raise param_error(f"{key}: only LastPrice is supported by the emulator")
    if P.flag(p, "reduceOnly"):
        raise param_error("reduceOnly orders cannot carry takeProfit/stopLoss")
    return tp, sl


#: instruments-info ``maxPrice`` in ticks (BTCUSDT: 1999999.8). Bybit's price band around the
#: mark price (priceLimitRatioX/Y) is NOT enforced: the simulated venue has no such rule.
MAX_PRICE_TICKS = 19_999_998


class EmulatorState:
    """Everything the emulated venue knows; outlives every client connection."""

    def __init__(
        self,
        instrument: Instrument,
        sim: SimConfig,
        venue: Venue,
        candles: Sequence[CandleClosed],
        faults: Faults,
    ) -> None:
        if not candles:
            raise ValueError("the emulator needs at least one candle")
        self.inst = instrument
        self.sim = sim
        self.venue = venue
        self.candles = candles
        self.faults = faults
        self.cursor = 0  # candles[:cursor] have been played
        self.ledger = Ledger(instrument, sim)
        # The ledger's collections, under the names tests and tools read them by.
        self.orders = self.ledger.orders  # by orderId, creation order
        self.by_client = self.ledger.by_client
        self.link_ids = self.ledger.link_ids
        self.executions = self.ledger.executions
        # Create requests the matching engine acted on, per orderLinkId: placed, or refused
        # as a duplicate (110072). A request turned away before it (10006, an injected HTTP
        # error) is not here: nothing was placed, and retrying it is right.
        self.creates_acted_on: dict[str, int] = {}

    # ------------------------------------------------------------------ market time

    @property
    def market_ms(self) -> int:
        """Close of the last candle played (before any: the first candle's open)."""
        if self.cursor == 0:
            return self.candles[0].open_ms
        return self.candles[self.cursor - 1].close_ms

    @property
    def last_price(self) -> int:
        """Last traded price in ticks: the last close (before any candle: the first open)."""
        if self.cursor == 0:
            return self.candles[0].open
        return self.candles[self.cursor - 1].close

    @property
    def exhausted(self) -> bool:
        return self.cursor >= len(self.candles)

    def played(self) -> Sequence[CandleClosed]:
        return self.candles[: self.cursor]

    def play_next(self) -> tuple[CandleClosed, list[PrivateMsg]]:
        """Feed the next candle to the matching engine; return it and the private messages."""
        if self.exhausted:
            raise IndexError("no candles left to play")
        candle = self.candles[self.cursor]
        events = self.venue.on_candle(candle)
        self.cursor += 1
        return candle, self._fold(events, command=False)

    # ------------------------------------------------------------------ order writes

    def create(self, p: dict[str, Any]) -> tuple[dict[str, Any], list[PrivateMsg]]:
        """``/v5/order/create``: validate, submit, and fold the venue's answer."""
        inst = self.inst
        P.check_category(p)
        self._check_symbol(p)
        side = P.require(p, "side")
        if side not in (BUY, SELL):
            raise param_error(f"side invalid: {side!r}")
        order_type = P.require(p, "orderType")
        if order_type not in ("Market", "Limit"):
            raise param_error(f"orderType invalid: {order_type!r}")
        qty = P.lots(inst, p, "qty")
        if qty <= 0:
            raise param_error("Qty invalid: qty must be > 0")
        tif = P.text(p, "timeInForce", "GTC") or "GTC"
        if tif not in TIFS:
            raise param_error(f"timeInForce invalid: {tif!r}")
        price = P.ticks(inst, p, "price")
        if price > MAX_PRICE_TICKS:
            raise ApiError(110003, "Order price exceeds the allowable range")
        if order_type == "Market":
            if tif == "PostOnly":
                raise param_error("a Market order cannot be PostOnly")
            price = 0  # Bybit ignores a market order's price
            tif = "IOC" if tif == "GTC" else tif
        elif price <= 0:
            raise param_error("price is required for a Limit order")
        trigger = P.ticks(inst, p, "triggerPrice")
        direction = P.integer(p, "triggerDirection", 0)
        if trigger and direction not in (1, 2):
            raise param_error("triggerDirection must be 1 or 2 for a conditional order")
        if not trigger:
            direction = 0
        reduce_only = P.flag(p, "reduceOnly")
        if P.integer(p, "positionIdx", 0) != 0:
            raise param_error("position idx not match position mode (one-way only)")
        take_profit, stop_loss = _tpsl(inst, p)
        link = P.text(p, "orderLinkId")
        if link:
            P.check_link_id(link)
            self.creates_acted_on[link] = self.creates_acted_on.get(link, 0) + 1
            if link in self.link_ids:
                raise ApiError(110072, "OrderLinkedID is duplicate")
        if qty < inst.min_lots:
            raise param_error("The number of contracts exceeds minimum limit allowed")
        if inst.max_lots and qty > inst.max_lots:
            raise param_error("The number of contracts exceeds maximum limit allowed: too large")
        ref = price or trigger or self.last_price
        if inst.notional(ref, qty) < inst.min_notional:
            raise ApiError(110094, "Order notional value below the lower limit")
        last = self.last_price
        if trigger and direction == 1 and trigger <= last:
            raise ApiError(
                110092, f"expect Rising, but trigger_price[{trigger}] <= current[{last}]"
            )
        if trigger and direction == 2 and trigger >= last:
            raise ApiError(
                110093, f"expect Falling, but trigger_price[{trigger}] >= current[{last}]"
            )
        auto = self.ledger.next_auto_id()
        client_id = link or f"emu-auto-{auto}"
        cmd = SubmitOrder(
            ts=self.market_ms,
            client_id=client_id,
            symbol=inst.symbol,
            side=side,
            order_type=order_type,
            qty=qty,
            price=price,
            trigger_price=trigger,
            trigger_direction=direction,
            time_in_force=tif,
            reduce_only=reduce_only,
            take_profit=take_profit,
            stop_loss=stop_loss,
        )
        if self.faults.reject_now():
            if self.faults.reject_mode == "sync":
                raise ApiError(self.faults.reject_code, "rejected by fault injection")
            # Accepted, then rejected by the "matching engine": New first, then Rejected, so a
            # client sees the order exist before it ends whichever reply it reads first.
            rec = self.ledger.record(cmd, f"emu-rej-{auto}", "New", self.last_price)
            created = order_obj(inst, rec, ws=True)
            rec.status, rec.reject_reason = "Rejected", "EC_Others"
            return self._ack(rec), [("order", created), ("order", order_obj(inst, rec, ws=True))]
        self.ledger.pending[client_id] = cmd
        try:
            events = self.venue.on_command(cmd)
            for ev in events:
                if not isinstance(ev, OrderRejected) or ev.client_id != client_id:
                    continue
                if ev.code and not ev.reason.startswith("EC_"):
                    raise ApiError(ev.code, ev.reason)
            msgs = self._fold(events, command=True)
        finally:
            self.ledger.pending.pop(client_id, None)
        rec_or_none = self.by_client.get(client_id)
        if rec_or_none is None:
            raise ApiError(10016, "internal error: the matching engine did not answer the order")
        return self._ack(rec_or_none), msgs

    def amend(self, p: dict[str, Any]) -> tuple[dict[str, Any], list[PrivateMsg]]:
        """``/v5/order/amend``: new qty/price/triggerPrice for an open order."""
        P.check_category(p)
        self._check_symbol(p)
        rec = self._find(p, "amend")
        qty = P.lots(self.inst, p, "qty")
        price = P.ticks(self.inst, p, "price")
        trigger = P.ticks(self.inst, p, "triggerPrice")
        if not (qty or price or trigger):
            raise param_error("nothing to amend: give qty, price or triggerPrice")
        if qty and qty <= rec.cum_qty:
            raise ApiError(
                110064,
                "The modified qty cannot be less than or equal to the filled qty",
            )
        if price and rec.order_type == "Market":
            raise param_error("cannot amend the price of a Market order")
        cmd = AmendOrder(
            ts=self.market_ms, client_id=rec.client_id, qty=qty, price=price, trigger_price=trigger
        )
        return self._command(cmd, rec)

    def cancel(self, p: dict[str, Any]) -> tuple[dict[str, Any], list[PrivateMsg]]:
        """``/v5/order/cancel`` of one open order."""
        P.check_category(p)
        self._check_symbol(p)
        rec = self._find(p, "cancel")
        return self._command(CancelOrder(ts=self.market_ms, client_id=rec.client_id), rec)

    def trading_stop(self, p: dict[str, Any]) -> tuple[dict[str, Any], list[PrivateMsg]]:
        """``/v5/position/trading-stop`` (Full mode, LastPrice): set, move or remove ("0")
        the position's takeProfit / stopLoss; an omitted one stays as it is."""
        P.check_category(p)
        self._check_symbol(p)
        if P.integer(p, "positionIdx", 0) != 0:
            raise param_error("position idx not match position mode (one-way only)")
        if (P.text(p, "tpslMode") or "Full") != "Full":
            raise param_error("tpslMode: only Full is supported by the emulator")
        for key in ("tpTriggerBy", "slTriggerBy"):
            if (P.text(p, key) or "LastPrice") != "LastPrice":
                raise param_error(f"{key}: only LastPrice is supported by the emulator")
        q = self.venue.position.qty
        if q == 0:
            raise param_error("can not set tp/sl/ts for zero position")
        last = self.last_price
        wanted = [
            (purpose, P.ticks(self.inst, p, key))
            for purpose, key in (("take_profit", "takeProfit"), ("stop", "stopLoss"))
            if P.text(p, key) != ""
        ]
        if not wanted:
            raise param_error("takeProfit or stopLoss is required")
        msgs: list[PrivateMsg] = []
        changed = False
        for purpose, level in wanted:
            below = (purpose == "stop") == (q > 0)  # a long's stop lies below the price
            if level and (level >= last if below else level <= last):
                name = "StopLoss" if purpose == "stop" else "TakeProfit"
                side = "Buy" if q > 0 else "Sell"
                where = "lower" if below else "higher"
                raise param_error(
                    f"{name}:{level} set for {side} position should {where} than {last}"
                )
            current = next(
                (
                    r
                    for r in self.orders.values()
                    if r.is_open and r.stop_type == _STOP_TYPE[purpose]
                ),
                None,
            )
            if (current.trigger_price if current else 0) == level:
                continue
            events = self.venue.trading_stop(self.market_ms, purpose, level)
            for ev in events:
                if isinstance(ev, CommandRejected):
                    raise ApiError(ev.code or 10001, ev.reason)
            msgs.extend(self._fold(events, command=True))
            changed = True
        if not changed:
            raise ApiError(34040, "not modified")
        return {}, msgs

    def cancel_all(self, p: dict[str, Any]) -> tuple[dict[str, Any], list[PrivateMsg]]:
        """``/v5/order/cancel-all``: every open order of the symbol (or settle/base coin)."""
        P.check_category(p)
        symbol, base, settle = P.text(p, "symbol"), P.text(p, "baseCoin"), P.text(p, "settleCoin")
        if not (symbol or base or settle):
            raise param_error("one of symbol, baseCoin or settleCoin is required")
        spec = self.inst.spec
        if symbol:
            match = symbol == spec.symbol
        elif base:
            match = base == spec.base_coin
        else:
            match = settle == spec.quote_coin
        flt = P.text(p, "orderFilter")
        if flt not in ("", "Order", "StopOrder", "OpenOrder"):
            raise param_error(f"orderFilter invalid: {flt!r}")
        done: list[dict[str, str]] = []
        msgs: list[PrivateMsg] = []
        targets = [r for r in self.orders.values() if r.is_open] if match else []
        for rec in targets:
            untriggered = rec.status == "Untriggered"
            if (flt == "StopOrder" and not untriggered) or (flt == "Order" and untriggered):
                continue
            events = self.venue.on_command(CancelOrder(ts=self.market_ms, client_id=rec.client_id))
            if any(isinstance(ev, OrderCancelled) for ev in events):
                done.append({"orderId": rec.order_id, "orderLinkId": rec.link_id})
            msgs.extend(self._fold(events, command=False))
        msgs.append(("position", self._position_obj()))
        return {"list": done, "success": "1"}, msgs

    # ------------------------------------------------------------------ views

    def position_view(self) -> PositionView:
        pos = self.venue.position
        return PositionView(
            qty=pos.qty,
            entry_value=pos.entry_value,
            realized=pos.realized,
            fees=pos.fees,
            funding=pos.funding,
            mark=self.last_price,
            liq=self.venue.liq_price() if pos.qty else 0,
            leverage=self.venue.leverage,
            mm_e8=self.sim.maintenance_margin_e8,
            created_ms=self.ledger.pos_created_ms or self.market_ms,
            updated_ms=self.ledger.pos_updated_ms or self.market_ms,
            seq=self.ledger.pos_seq,
        )

    def wallet(self) -> dict[str, Any]:
        """The UNIFIED account object (wallet-balance list element / wallet topic data)."""
        return wallet_obj(
            self.inst,
            self.venue.wallet,
            self.venue.available(),
            self.position_view(),
            self._order_im(),
        )

    def _position_obj(self) -> dict[str, Any]:
        return position_obj(self.inst, self.position_view(), ws=True)

    def _order_im(self) -> int:
        total = 0
        lev = max(1, self.venue.leverage)
        for r in self.orders.values():
            if r.is_open and not r.reduce_only and r.status != "Untriggered":
                total += self.inst.notional(r.price or self.last_price, r.leaves_qty) // lev
        return total

    # ------------------------------------------------------------------ internals

    def _check_symbol(self, p: dict[str, Any]) -> None:
        symbol = P.require(p, "symbol")
        if symbol != self.inst.symbol:
            raise param_error(
                f"symbol invalid: {symbol!r} (this emulator trades {self.inst.symbol})"
            )

    def _find(self, p: dict[str, Any], command: str) -> OrderRecord:
        order_id, link = P.text(p, "orderId"), P.text(p, "orderLinkId")
        if not (order_id or link):
            raise param_error("orderId or orderLinkId is required")
        rec: OrderRecord | None = None
        if order_id:
            rec = self.orders.get(order_id)
        elif link:
            rec = next((r for r in self.orders.values() if r.link_id == link), None)
        if rec is None or not rec.is_open:
            what = (
                "order not exists or too late to replace"
                if command == "amend"
                else ("order not exists or too late to cancel")
            )
            raise ApiError(110001, what)
        return rec

    def _command(
        self, cmd: AmendOrder | CancelOrder, rec: OrderRecord
    ) -> tuple[dict[str, Any], list[PrivateMsg]]:
        events = self.venue.on_command(cmd)
        for ev in events:
            if isinstance(ev, CommandRejected) and ev.client_id == rec.client_id:
                raise ApiError(ev.code or 110001, ev.reason)
        msgs = self._fold(events, command=True)
        return self._ack(rec), msgs

    def _adopt_armed(self, events: Sequence[EventBase]) -> None:
        """Orders the venue armed from attached TP/SL (or trading-stop) are the account's:
        give the ledger what it needs to record them (their orderLinkId is the venue's
        ``<parent orderLinkId>-sl|-tp``; ``parentOrderLinkId`` names the parent)."""
        for ev in events:
            if not isinstance(ev, OrderAccepted) or ev.client_id in self.by_client:
                continue
            o = self.venue.find_order(ev.client_id)
            if o is None or not o.parent or ev.client_id in self.ledger.pending:
                continue
            parent = self.by_client.get(o.parent)
            self.ledger.armed[o.client_id] = (
                parent.link_id if parent is not None else "",
                _STOP_TYPE[o.purpose],
            )
            self.ledger.pending[o.client_id] = SubmitOrder(
                ts=ev.ts,
                client_id=o.client_id,
                symbol=o.symbol,
                side=o.side,
                order_type=o.order_type,
                qty=o.qty,
                trigger_price=o.trigger_price,
                trigger_direction=o.trigger_direction,
                reduce_only=True,
                purpose=o.purpose,
            )

    @staticmethod
    def _ack(rec: OrderRecord) -> dict[str, Any]:
        return {"orderId": rec.order_id, "orderLinkId": rec.link_id}

    def _fold(self, events: Sequence[EventBase], *, command: bool) -> list[PrivateMsg]:
        """Fold venue events into the ledger; add position and wallet messages when the
        account changed, and a position message after every order command (Bybit sends one on
        every create/amend/cancel)."""
        self._adopt_armed(events)
        msgs, account_changed = self.ledger.fold(events, self.last_price)
        if account_changed:
            msgs.append(("position", self._position_obj()))
            msgs.append(("wallet", self.wallet()))
        elif command:
            msgs.append(("position", self._position_obj()))
        return msgs
