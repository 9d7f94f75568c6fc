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
    Fill,
    FundingPaid,
    Liquidated,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderTriggered,
    SubmitOrder,
)
from engine.instrument import Instrument
from engine.positions import Position, apply_fill, apply_funding

from . import params as P
from .errors import ApiError, param_error
from .faults import Faults
from .matching import Venue
from .records import ExecRecord, OrderRecord
from .wire import PositionView, exec_obj, order_obj, position_obj, wallet_obj

#: (base topic, data element) -- the hub wraps it for each subscriber's exact topic string.
PrivateMsg = tuple[str, dict[str, Any]]

TIFS = ("GTC", "IOC", "FOK", "PostOnly")
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
        self.orders: dict[str, OrderRecord] = {}  # by orderId, creation order
        self.by_client: dict[str, OrderRecord] = {}
        self.link_ids: set[str] = set()
        self.executions: list[ExecRecord] = []
        self._pending: dict[str, SubmitOrder] = {}
        self._mirror = Position()
        self._order_seq = 0
        self._exec_seq = 1_000_000
        self._auto_id = 0
        self._pos_seq = 1
        self._pos_created = 0
        self._pos_updated = 0

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
        if P.ticks(inst, p, "takeProfit") or P.ticks(inst, p, "stopLoss"):
            raise param_error("takeProfit/stopLoss on orders are not supported by the emulator")
        link = P.text(p, "orderLinkId")
        if link:
            P.check_link_id(link)
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
        self._auto_id += 1
        client_id = link or f"emu-auto-{self._auto_id}"
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
        )
        if self.faults.reject_now():
            if self.faults.reject_mode == "sync":
                raise ApiError(self.faults.reject_code, "rejected by fault injection")
            # Accepted, then rejected by the "matching engine": New first, then Rejected, so a
            # client sees the order exist before it ends whichever reply it reads first.
            rec = self._record(cmd, f"emu-rej-{self._auto_id}", "New")
            created = order_obj(inst, rec, ws=True)
            rec.status, rec.reject_reason = "Rejected", "EC_Others"
            return self._ack(rec), [("order", created), ("order", order_obj(inst, rec, ws=True))]
        self._pending[client_id] = cmd
        try:
            events = self.venue.on_command(cmd)
            for ev in events:
                if not isinstance(ev, OrderRejected) or ev.client_id != client_id:
                    continue
                if ev.code and not ev.reason.startswith("EC_"):
                    raise ApiError(ev.code, ev.reason)
            msgs = self._fold(events, command=True)
        finally:
            self._pending.pop(client_id, None)
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
            leverage=self.sim.leverage,
            mm_e8=self.sim.maintenance_margin_e8,
            created_ms=self._pos_created or self.market_ms,
            updated_ms=self._pos_updated or self.market_ms,
            seq=self._pos_seq,
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
        lev = max(1, self.sim.leverage)
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

    @staticmethod
    def _ack(rec: OrderRecord) -> dict[str, Any]:
        return {"orderId": rec.order_id, "orderLinkId": rec.link_id}

    def _record(self, cmd: SubmitOrder, order_id: str, status: str) -> OrderRecord:
        self._order_seq += 1
        rec = OrderRecord(
            order_id=order_id,
            link_id=cmd.client_id if not cmd.client_id.startswith("emu-auto-") else "",
            client_id=cmd.client_id,
            symbol=cmd.symbol,
            side=cmd.side,
            order_type=cmd.order_type,
            qty=cmd.qty,
            price=cmd.price,
            trigger_price=cmd.trigger_price,
            trigger_direction=cmd.trigger_direction,
            tif=cmd.time_in_force,
            reduce_only=cmd.reduce_only,
            created_ms=cmd.ts,
            seq=self._order_seq,
            status=status,
            updated_ms=cmd.ts,
            last_price_on_created=self.last_price,
            conditional=cmd.trigger_price > 0,
        )
        self.orders[order_id] = rec
        self.by_client[cmd.client_id] = rec
        if rec.link_id:
            self.link_ids.add(rec.link_id)
        return rec

    def _fold(self, events: Sequence[EventBase], *, command: bool) -> list[PrivateMsg]:
        """Fold venue events into the records; return the private messages they cause."""
        inst = self.inst
        msgs: list[PrivateMsg] = []
        account_changed = False
        for ev in events:
            if isinstance(ev, OrderAccepted):
                cmd = self._pending.get(ev.client_id)
                if cmd is None or ev.client_id in self.by_client:
                    continue
                rec = self._record(cmd, ev.venue_id, ev.status)
                msgs.append(("order", order_obj(inst, rec, ws=True)))
                continue
            if isinstance(ev, OrderRejected):
                cmd = self._pending.get(ev.client_id)
                if cmd is None or ev.client_id in self.by_client:
                    continue
                # An asynchronous rejection (e.g. PostOnly that would take): the order exists.
                self._auto_id += 1
                post_only = ev.reason == "EC_PostOnlyWillTakeLiquidity"
                rec = self._record(
                    cmd, f"emu-r-{self._auto_id}", "Cancelled" if post_only else "Rejected"
                )
                rec.reject_reason = ev.reason if ev.reason.startswith("EC_") else "EC_Others"
                msgs.append(("order", order_obj(inst, rec, ws=True)))
                continue
            if isinstance(ev, Fill):
                msgs.extend(self._fold_fill(ev))
                account_changed = True
                continue
            if isinstance(ev, FundingPaid):
                self._fold_funding(ev, msgs)
                account_changed = True
                continue
            if isinstance(ev, Liquidated):
                self._fold_liquidation(ev, msgs)
                account_changed = True
                continue
            found = self.by_client.get(getattr(ev, "client_id", ""))
            if found is None:
                continue
            rec = found
            rec.updated_ms = ev.ts
            if isinstance(ev, OrderTriggered):
                rec.status = "Triggered"
                msgs.append(("order", order_obj(inst, rec, ws=True)))
                rec.status = "New"
            elif isinstance(ev, OrderAmended):
                rec.qty = ev.qty or rec.qty
                rec.price = ev.price or rec.price
                rec.trigger_price = ev.trigger_price or rec.trigger_price
            elif isinstance(ev, OrderCancelled):
                rec.status = "Deactivated" if rec.status == "Untriggered" else "Cancelled"
                if ev.reason.startswith("EC_"):
                    rec.reject_reason = ev.reason
                    rec.cancel_type = "UNKNOWN"
                else:
                    rec.cancel_type = (
                        ev.reason if ev.reason.startswith("Cancel") else "CancelByUser"
                    )
            elif isinstance(ev, OrderExpired):
                rec.status = "Cancelled"
                if ev.reason.startswith("EC_"):
                    rec.reject_reason = ev.reason
                elif rec.tif == "FOK":
                    rec.reject_reason = "EC_CancelForNoFullFill"
                else:
                    rec.reject_reason = "EC_NoImmediateQtyToFill"
            else:
                continue
            msgs.append(("order", order_obj(inst, rec, ws=True)))
        if account_changed:
            self._pos_seq += 1
            self._pos_updated = self.market_ms if not events else events[-1].ts
            msgs.append(("position", self._position_obj()))
            msgs.append(("wallet", self.wallet()))
        elif command:
            msgs.append(("position", self._position_obj()))
        return msgs

    def _next_exec_seq(self) -> int:
        self._exec_seq += 1
        return self._exec_seq

    def _fold_fill(self, ev: Fill) -> list[PrivateMsg]:
        inst = self.inst
        rec = self.by_client.get(ev.client_id)
        before = self._mirror.qty
        pnl = apply_fill(self._mirror, ev.side, ev.qty, ev.price, ev.fee, inst.notional_unit)
        closed = min(ev.qty, abs(before)) if before and (before > 0) != (ev.side == BUY) else 0
        if before == 0 and self._mirror.qty != 0:
            self._pos_created = ev.ts
        value = inst.notional(ev.price, ev.qty)
        if rec is not None:
            rec.cum_qty += ev.qty
            rec.cum_value += value
            rec.cum_fee += ev.fee
            rec.updated_ms = ev.ts
            rec.status = "Filled" if rec.cum_qty >= rec.qty else "PartiallyFilled"
        rate = self.sim.maker_fee_e8 if ev.is_maker else self.sim.taker_fee_e8
        ex = ExecRecord(
            exec_id=ev.exec_id,
            order_id=rec.order_id if rec else ev.venue_id,
            link_id=rec.link_id if rec else "",
            symbol=ev.symbol,
            side=ev.side,
            price=ev.price,
            qty=ev.qty,
            value=value,
            fee=ev.fee,
            fee_rate_e8=rate,
            is_maker=ev.is_maker,
            exec_type=ev.exec_type,
            exec_ms=ev.ts,
            order_type=rec.order_type if rec else "UNKNOWN",
            order_price=rec.price if rec else 0,
            order_qty=rec.qty if rec else 0,
            leaves_qty=rec.leaves_qty if rec else 0,
            stop_order_type="Stop" if rec and rec.conditional else "UNKNOWN",
            closed_qty=closed,
            exec_pnl=pnl - ev.fee,
            mark_price=self.last_price,
            seq=self._next_exec_seq(),
        )
        self.executions.append(ex)
        out: list[PrivateMsg] = [("execution", exec_obj(inst, ex, ws=True))]
        if rec is not None:
            out.append(("order", order_obj(inst, rec, ws=True)))
        return out

    def _fold_funding(self, ev: FundingPaid, msgs: list[PrivateMsg]) -> None:
        apply_funding(self._mirror, ev.amount)
        qty = abs(self._mirror.qty)
        mark = ev.mark_price or self.last_price
        ex = ExecRecord(
            exec_id=ev.exec_id,
            order_id="",
            link_id="",
            symbol=ev.symbol,
            side=SELL if self._mirror.qty > 0 else BUY,
            price=mark,
            qty=qty,
            value=self.inst.notional(mark, qty),
            fee=ev.amount,
            fee_rate_e8=ev.rate_e8,
            is_maker=False,
            exec_type="Funding",
            exec_ms=ev.ts,
            order_type="UNKNOWN",
            order_price=0,
            order_qty=0,
            leaves_qty=0,
            stop_order_type="UNKNOWN",
            closed_qty=0,
            exec_pnl=-ev.amount,
            mark_price=mark,
            seq=self._next_exec_seq(),
        )
        self.executions.append(ex)
        msgs.append(("execution", exec_obj(self.inst, ex, ws=True)))

    def _fold_liquidation(self, ev: Liquidated, msgs: list[PrivateMsg]) -> None:
        before = self._mirror.qty
        pnl = apply_fill(self._mirror, ev.side, ev.qty, ev.price, ev.fee, self.inst.notional_unit)
        ex = ExecRecord(
            exec_id=ev.exec_id,
            order_id="",
            link_id="",
            symbol=ev.symbol,
            side=ev.side,
            price=ev.price,
            qty=ev.qty,
            value=self.inst.notional(ev.price, ev.qty),
            fee=ev.fee,
            fee_rate_e8=self.sim.liquidation_fee_e8,
            is_maker=False,
            exec_type="BustTrade",
            exec_ms=ev.ts,
            order_type="Market",
            order_price=ev.price,
            order_qty=ev.qty,
            leaves_qty=0,
            stop_order_type="UNKNOWN",
            closed_qty=min(ev.qty, abs(before)),
            exec_pnl=pnl - ev.fee,
            mark_price=self.last_price,
            seq=self._next_exec_seq(),
        )
        self.executions.append(ex)
        msgs.append(("execution", exec_obj(self.inst, ex, ws=True)))
