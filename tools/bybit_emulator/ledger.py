"""The emulator's ledger: Bybit-visible order and execution records, folded from the
matching engine's events, and the private ``order``/``execution`` messages each event causes.

Status mapping (Bybit linear, reference §3.1): accepted -> New / Untriggered; triggered ->
a Triggered message then New; a fill -> PartiallyFilled / Filled; a user or reduce-only cancel
-> Cancelled (Deactivated while Untriggered; linear never shows PartiallyFilledCanceled); an
IOC/FOK remainder -> Cancelled with rejectReason EC_NoImmediateQtyToFill (FOK:
EC_CancelForNoFullFill), the safer of the UNCONFIRMED candidates; a PostOnly that would take
-> Cancelled with EC_PostOnlyWillTakeLiquidity. Funding and liquidation become executions with
execType Funding and BustTrade. orderLinkIds are unique for the ledger's whole life (Bybit's
scope is UNCONFIRMED; this is the strict reading).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.sim.config import SimConfig
from engine.events import (
    BUY,
    SELL,
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

from .records import ExecRecord, OrderRecord
from .wire import exec_obj, order_obj

#: (base topic, data element) -- the hub wraps it for each subscriber's exact topic string.
PrivateMsg = tuple[str, dict[str, Any]]


class Ledger:
    """Every order and execution the emulated account has seen, in creation order."""

    def __init__(self, instrument: Instrument, sim: SimConfig) -> None:
        self.inst = instrument
        self.sim = sim
        self.orders: dict[str, OrderRecord] = {}  # by orderId
        self.by_client: dict[str, OrderRecord] = {}
        self.link_ids: set[str] = set()
        self.executions: list[ExecRecord] = []
        #: submissions in flight, by client id: an OrderAccepted creates their record
        self.pending: dict[str, SubmitOrder] = {}
        #: orders the venue armed from attached TP/SL: client id -> (parent link, stop type)
        self.armed: dict[str, tuple[str, str]] = {}
        self.pos_seq = 1
        self.pos_created_ms = 0
        self.pos_updated_ms = 0
        self._mirror = Position()  # folded from the same fills: realized PnL per execution
        self._order_seq = 0
        self._exec_seq = 1_000_000
        self._auto_id = 0

    def next_auto_id(self) -> int:
        """A fresh number for generated ids (client ids of orders sent without orderLinkId)."""
        self._auto_id += 1
        return self._auto_id

    def record(self, cmd: SubmitOrder, order_id: str, status: str, last_price: int) -> OrderRecord:
        """A new order record for ``cmd`` (accepted, or refused after creation)."""
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
            last_price_on_created=last_price,
            conditional=cmd.trigger_price > 0,
            take_profit=cmd.take_profit,
            stop_loss=cmd.stop_loss,
        )
        armed = self.armed.pop(cmd.client_id, None)
        if armed is not None:
            rec.parent_link, rec.stop_type = armed
        self.orders[order_id] = rec
        self.by_client[cmd.client_id] = rec
        if rec.link_id:
            self.link_ids.add(rec.link_id)
        return rec

    def fold(self, events: Sequence[EventBase], last_price: int) -> tuple[list[PrivateMsg], bool]:
        """Fold venue events into the records; return the order and execution messages they
        cause, and whether the account (position, wallet) changed."""
        inst = self.inst
        msgs: list[PrivateMsg] = []
        account_changed = False
        for ev in events:
            if isinstance(ev, OrderAccepted):
                cmd = self.pending.get(ev.client_id)
                if cmd is None or ev.client_id in self.by_client:
                    continue
                rec = self.record(cmd, ev.venue_id, ev.status, last_price)
                msgs.append(("order", order_obj(inst, rec, ws=True)))
                continue
            if isinstance(ev, OrderRejected):
                cmd = self.pending.get(ev.client_id)
                if cmd is None or ev.client_id in self.by_client:
                    continue
                # An asynchronous rejection (e.g. PostOnly that would take): the order exists.
                post_only = ev.reason == "EC_PostOnlyWillTakeLiquidity"
                status = "Cancelled" if post_only else "Rejected"
                rec = self.record(cmd, f"emu-r-{self.next_auto_id()}", status, last_price)
                rec.reject_reason = ev.reason if ev.reason.startswith("EC_") else "EC_Others"
                msgs.append(("order", order_obj(inst, rec, ws=True)))
                continue
            if isinstance(ev, Fill):
                msgs.extend(self._fold_fill(ev, last_price))
                account_changed = True
                continue
            if isinstance(ev, FundingPaid):
                self._fold_funding(ev, msgs, last_price)
                account_changed = True
                continue
            if isinstance(ev, Liquidated):
                self._fold_liquidation(ev, msgs, last_price)
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
            self.pos_seq += 1
            self.pos_updated_ms = events[-1].ts
        return msgs, account_changed

    def _next_exec_seq(self) -> int:
        self._exec_seq += 1
        return self._exec_seq

    def _fold_fill(self, ev: Fill, last_price: int) -> list[PrivateMsg]:
        inst = self.inst
        rec = self.by_client.get(ev.client_id)
        before = self._mirror.qty
        pnl = apply_fill(self._mirror, ev.side, ev.qty, ev.price, ev.fee, inst.notional_unit)
        closed = min(ev.qty, abs(before)) if before and (before > 0) != (ev.side == BUY) else 0
        if before == 0 and self._mirror.qty != 0:
            self.pos_created_ms = ev.ts
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
            mark_price=last_price,
            seq=self._next_exec_seq(),
        )
        self.executions.append(ex)
        out: list[PrivateMsg] = [("execution", exec_obj(inst, ex, ws=True))]
        if rec is not None:
            out.append(("order", order_obj(inst, rec, ws=True)))
        return out

    def _fold_funding(self, ev: FundingPaid, msgs: list[PrivateMsg], last_price: int) -> None:
        apply_funding(self._mirror, ev.amount)
        qty = abs(self._mirror.qty)
        mark = ev.mark_price or last_price
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

    def _fold_liquidation(self, ev: Liquidated, msgs: list[PrivateMsg], last_price: int) -> None:
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
            mark_price=last_price,
            seq=self._next_exec_seq(),
        )
        self.executions.append(ex)
        msgs.append(("execution", exec_obj(self.inst, ex, ws=True)))
