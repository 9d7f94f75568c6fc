"""``SimVenue``: a pure, deterministic USDT-perpetual venue matching orders against candles.

Two users drive it: the backtest runner (``on_candle`` then ``on_command`` per bar) and
the Bybit emulator (which serves its state over the v5 wire format). It never reads a
clock: acknowledgements carry the command's ``ts``, fills and everything else that
happens during a candle carry the candle's ``ts`` (its close). The fill rules are
written down in adapters/sim/README.md; the short version:

* ``on_command`` answers at once (accept / reject / amend / cancel) and never fills.
* ``on_candle`` walks the candle's price path ``open -> nearer extreme -> other extreme
  -> close`` (see ``adapters.sim.path``) and, in path order, triggers conditional orders,
  fills orders, liquidates; then expires IOC/FOK remainders and settles funding.
* An order takes part in a candle only if ``active_from <= candle.open_ms``, so an
  order placed at a candle's close fills no earlier than the next candle.
"""

from __future__ import annotations

from operator import truediv  # int / int rounded once, as Python does, also under mypyc
from typing import Final

from adapters.sim.attached import LEVELS, armed_order, attach_error, virtual_exits
from adapters.sim.checks import param_error
from adapters.sim.config import SimConfig
from adapters.sim.funding import FundingSchedule, funding_times, interval_ms
from adapters.sim.margin import (
    bankruptcy_at_margin,
    initial_margin,
    liquidation_at_margin,
    order_cost,
)
from adapters.sim.orders import (
    CANCEL_BEFORE_LIQ,
    CANCEL_BY_REDUCE_ONLY,
    CANCEL_BY_TPSL_CLEAR,
    CANCEL_BY_USER,
    DUPLICATE_CLIENT_ID,
    FOK,
    INSUFFICIENT_BALANCE,
    IOC,
    LIMIT,
    MARKET,
    MIN_NOTIONAL,
    ORDER_NOT_FOUND,
    PARAMS_ERROR,
    POST_ONLY,
    POST_ONLY_WOULD_TAKE,
    REDUCE_ONLY_RULE,
    TRIGGER_EXPECT_FALLING,
    TRIGGER_EXPECT_RISING,
    SimOrder,
)
from adapters.sim.path import high_first, reachable
from engine.events import (
    BUY,
    FILLED,
    NEW,
    PARTIALLY_FILLED,
    SELL,
    UNTRIGGERED,
    AmendOrder,
    BalanceSnapshot,
    CancelOrder,
    CandleClosed,
    CommandRejected,
    Event,
    Fill,
    FundingPaid,
    Liquidated,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderTriggered,
    PositionSnapshot,
    SubmitOrder,
)
from engine.instrument import RATE_SCALE, Instrument, fee_for
from engine.orders import armed_side, attached_id
from engine.positions import Position, apply_fill, apply_funding

# Kinds of path events; at one price they act in this order (ties go against the trader).
_LIQ: Final = 0
_TRIGGER: Final = 1
_FILL: Final = 2
_WOULD_INCREASE: Final = "reduce-only order would increase the position"


class SimVenueError(ValueError):
    """The venue was driven wrongly (a candle of another symbol, candles out of order)."""


MARGIN_MODES: Final = ("cross", "isolated")


def _check_margin_mode(mode: str) -> None:
    if mode not in MARGIN_MODES:
        raise SimVenueError(f"margin_mode must be cross|isolated, not {mode!r}")


def _check_leverage(leverage: int, mmr_e8: int) -> None:
    """A position must be able to exist: its IM rate (1/leverage) above the MM rate."""
    if leverage < 1 or leverage * mmr_e8 >= RATE_SCALE:
        raise SimVenueError(
            f"leverage {leverage} is not in [1, {RATE_SCALE // max(mmr_e8, 1)}) for a "
            f"maintenance margin rate of {truediv(mmr_e8, RATE_SCALE):.4%}"
        )


class SimVenue:
    """One symbol's simulated venue: orders, one-way position, wallet, margin, funding.

    Public state (read it, do not write it): ``orders`` (open orders by client id, in
    placement order), ``position`` (``engine.positions.Position``; ``realized``,
    ``fees`` and ``funding`` are the venue's running totals), ``wallet``,
    ``last_price`` (the last candle close, ticks; 0 before the first candle),
    ``leverage``. All money is in 1e-8 quote units, prices in ticks, qty in lots.
    """

    def __init__(
        self,
        instrument: Instrument,
        config: SimConfig,
        initial_balance: int,
        *,
        id_prefix: str = "sim",
    ) -> None:
        if config.both_hit not in ("worse", "better", "path"):
            raise SimVenueError(f"both_hit must be worse|better|path, not {config.both_hit!r}")
        _check_leverage(config.leverage, config.maintenance_margin_e8)
        _check_margin_mode(config.margin_mode)
        self.instrument = instrument
        self.config = config
        self.symbol = instrument.symbol
        self.initial_balance = initial_balance
        self.id_prefix = id_prefix
        self.leverage = config.leverage
        self.margin_mode = config.margin_mode
        self.position = Position()
        self.orders: dict[str, SimOrder] = {}
        self.last_price = 0
        self.last_close_ms: int | None = None
        self._nu = instrument.notional_unit
        self._funding = FundingSchedule(config)
        self.funding_interval_ms = interval_ms(instrument, config)
        # The liquidation price, recomputed only after the position, the wallet or a margin
        # setting changed (a fill, funding, a liquidation, set_leverage/set_margin_mode).
        self._liq_dirty = True
        self._liq_cached = 0
        self._all: dict[str, SimOrder] = {}  # every accepted order by client id
        self._by_venue_id: dict[str, SimOrder] = {}
        self._fills: list[Fill] = []
        self._liquidations: list[Liquidated] = []
        self._fundings: list[FundingPaid] = []
        self._order_seq = 0
        self._exec_seq = 0
        # Scratch for the candle being processed.
        self._out: list[Event] = []
        self._ts = 0
        self._cap = -1  # lots one order may fill this candle; -1 = no cap
        self._low = 0
        self._high = 0
        self._active: list[SimOrder] = []  # orders the candle being walked can reach
        # Path clock of the candle being walked (see ``_path_time``).
        self._bar_open_ms = 0
        self._bar_ms = 0  # close_ms - open_ms
        self._path_len = 0  # ticks travelled by the whole path
        self._leg_start = 0  # price where the current leg starts
        self._leg_done = 0  # ticks travelled before the current leg

    # ------------------------------------------------------------------ read side

    @property
    def wallet(self) -> int:
        """Wallet balance: initial + realized PnL - fees - funding (exact, money)."""
        p = self.position
        return self.initial_balance + p.realized - p.fees - p.funding

    def unrealized(self) -> int:
        """Unrealized PnL of the position at ``last_price`` (money)."""
        if self.position.qty == 0 or self.last_price == 0:
            return 0
        return self.position.unrealized(self.last_price, self._nu)

    def position_margin(self) -> int:
        """Initial margin held by the position: ``ceil(entry_value / leverage)``."""
        return initial_margin(self.position.entry_value, self.leverage)

    def order_margin(self, exclude: str = "") -> int:
        """Initial margin reserved by open orders that could grow the position."""
        total = 0
        for o in self.orders.values():
            if o.client_id != exclude:
                total += self._order_im(o, o.remaining)
        return total

    def available(self) -> int:
        """Money free for new orders: wallet + min(0, unrealized) - position IM - order IM.

        Unrealized losses count, unrealized profits do not (they are not yet money).
        """
        return self._free()

    def _free(self, exclude: str = "") -> int:
        upnl = min(0, self.unrealized())
        return self.wallet + upnl - self.position_margin() - self.order_margin(exclude)

    def liq_margin(self) -> int:
        """What backs the position: its IM (isolated) or the wallet balance (cross)."""
        if self.margin_mode == "cross":
            return self.wallet
        return self.position_margin()

    def liq_price(self) -> int:
        """Liquidation price of the position (ticks), 0 when flat; see ``adapters.sim.margin``."""
        if self._liq_dirty:
            self._liq_dirty = False
            p = self.position
            self._liq_cached = liquidation_at_margin(
                p.qty, p.entry_value, self._nu, self.liq_margin(), self.config.maintenance_margin_e8
            )
        return self._liq_cached

    def bankruptcy_price(self) -> int:
        """Price (ticks) at which the position's loss equals its margin; 0 when flat."""
        p = self.position
        return bankruptcy_at_margin(p.qty, p.entry_value, self._nu, self.liq_margin())

    def order_history(self) -> list[SimOrder]:
        """Every accepted order, open and closed, in placement order (rejects are not kept)."""
        return list(self._all.values())

    def find_order(self, order_id: str) -> SimOrder | None:
        """An accepted order by client id or venue id (open or closed)."""
        return self._all.get(order_id) or self._by_venue_id.get(order_id)

    def executions(self) -> list[Fill]:
        """Every Fill so far, in order (liquidations and funding are listed separately)."""
        return list(self._fills)

    def liquidations(self) -> list[Liquidated]:
        return list(self._liquidations)

    def fundings(self) -> list[FundingPaid]:
        return list(self._fundings)

    def position_snapshot(self, ts: int) -> PositionSnapshot:
        p = self.position
        return PositionSnapshot(
            ts, self.symbol, p.qty, p.entry_value, self.liq_price(), str(self.leverage)
        )

    def balance_snapshot(self, ts: int) -> BalanceSnapshot:
        coin = self.instrument.spec.quote_coin
        return BalanceSnapshot(ts, coin, self.wallet, self.available())

    def trading_stop(self, ts: int, purpose: str, level: int) -> list[Event]:
        """Set, move (``level`` ticks) or remove (0) the position's stop (``purpose="stop"``)
        or target, as Bybit's ``/v5/position/trading-stop`` in Full mode. Moving or removing
        goes through the amend / cancel rules of the armed order; a new level is armed at
        once as ``<id_prefix>-pos<n>-sl|-tp``. Nothing when flat."""
        q = self.position.qty
        armed = [o for o in self.orders.values() if o.parent and o.purpose == purpose]
        if armed:
            cmd: AmendOrder | CancelOrder = (
                AmendOrder(ts, armed[-1].client_id, trigger_price=level)
                if level
                else CancelOrder(ts, armed[-1].client_id)
            )
            return self.on_command(cmd)
        if not q or not level:
            return []
        out: list[Event] = []
        self._out, self._ts = out, ts
        side = BUY if q > 0 else SELL  # the side that opened the position
        direction = armed_side(side, purpose)[1]
        bad = self._trigger_satisfied(direction, level)
        if bad:
            self._out = []
            return [CommandRejected(ts, "", "trading-stop", "trigger price already reached", bad)]
        self._order_seq += 1
        stand_in = SimOrder(
            f"{self.id_prefix}-pos{self._order_seq}", "", self.symbol, side, MARKET, 0, 0, 0, 0,
            "GTC", False, NEW, ts, ts,
        )  # fmt: skip
        vid = f"{self.id_prefix}-o{self._order_seq}"
        o = armed_order(stand_in, purpose, level, abs(q), vid, self._order_seq)
        o.active_from = ts
        self.orders[o.client_id] = o
        self._all[o.client_id] = o
        self._by_venue_id[vid] = o
        out.append(OrderAccepted(ts, o.client_id, vid, UNTRIGGERED))
        self._out = []
        return out

    def set_leverage(self, leverage: int) -> None:
        """Change the leverage (as Bybit's set-leverage); applies to margin and liq price."""
        _check_leverage(leverage, self.config.maintenance_margin_e8)
        self.leverage = leverage
        self._liq_dirty = True

    def set_margin_mode(self, mode: str) -> None:
        """``cross`` or ``isolated`` (as Bybit's set-margin-mode); applies to the liq price."""
        _check_margin_mode(mode)
        self.margin_mode = mode
        self._liq_dirty = True

    # ---------------------------------------------------------------- commands

    def on_command(self, cmd: SubmitOrder | AmendOrder | CancelOrder) -> list[Event]:
        """Answer a command now: accept/reject, amend, cancel. Never fills."""
        out: list[Event] = []
        self._out = out
        self._ts = cmd.ts
        if isinstance(cmd, SubmitOrder):
            self._submit(cmd)
        elif isinstance(cmd, AmendOrder):
            self._amend(cmd)
        elif isinstance(cmd, CancelOrder):
            self._cancel_cmd(cmd)
        else:
            raise SimVenueError(f"not a venue command: {type(cmd).__name__}")
        self._out = []
        return out

    def _reject(self, cmd: SubmitOrder, reason: str, code: int = 0) -> None:
        self._out.append(OrderRejected(cmd.ts, cmd.client_id, reason, code))

    def _submit(self, cmd: SubmitOrder) -> None:
        inst = self.instrument
        conditional = cmd.trigger_price > 0
        bad_params = param_error(cmd, inst)
        if bad_params:
            return self._reject(cmd, bad_params, PARAMS_ERROR)
        if cmd.client_id in self._all:
            return self._reject(cmd, "client order id is duplicate", DUPLICATE_CLIENT_ID)
        if conditional:
            bad = self._trigger_satisfied(cmd.trigger_direction, cmd.trigger_price)
            if bad:
                return self._reject(cmd, "trigger price already reached", bad)
        elif cmd.time_in_force == POST_ONLY and self._crosses(cmd.side, cmd.price):
            return self._reject(cmd, POST_ONLY_WOULD_TAKE)
        qty = cmd.qty
        if cmd.reduce_only:
            closable = self._closable(cmd.side)
            if closable == 0:
                return self._reject(cmd, _WOULD_INCREASE, REDUCE_ONLY_RULE)
            qty = min(qty, closable)
        bad_tpsl = attach_error(cmd, cmd.price if cmd.order_type == LIMIT else self.last_price)
        if bad_tpsl:
            return self._reject(cmd, bad_tpsl, PARAMS_ERROR)
        ref = self._ref_price(cmd.order_type, cmd.price, cmd.trigger_price)
        notional = inst.notional(ref, qty)
        if not cmd.reduce_only:
            if ref and notional < inst.min_notional:
                return self._reject(cmd, "order value below the minimum", MIN_NOTIONAL)
            # An order that only closes needs no margin (a trader can always get out).
            opening = self._opening_lots(cmd.side, qty)
            need = self._order_cost(cmd.side, opening, ref)
            # One-way netting: the part that closes is settled first (its margin released,
            # its PnL at the reference price realized, its fee paid); the rest must fit.
            if opening and self._free_after_netting(cmd.side, qty, ref) < need:
                return self._reject(cmd, "insufficient balance", INSUFFICIENT_BALANCE)
        self._order_seq += 1
        # Positional up to ``purpose``: msgspec matches a keyword that follows skipped
        # defaults slowly (~0.5 us here, once per order).
        o = SimOrder(
            cmd.client_id,
            f"{self.id_prefix}-o{self._order_seq}",  # venue_id
            cmd.symbol,
            cmd.side,
            cmd.order_type,
            qty,
            cmd.price if cmd.order_type == LIMIT else 0,  # price
            cmd.trigger_price,
            cmd.trigger_direction if conditional else 0,  # trigger_direction
            cmd.time_in_force,  # tif
            cmd.reduce_only,
            UNTRIGGERED if conditional else NEW,  # status
            cmd.ts,  # created_ts
            cmd.ts,  # updated_ts
            cmd.purpose,
            active_from=cmd.ts,
            seq=self._order_seq,
            take_profit=cmd.take_profit,
            stop_loss=cmd.stop_loss,
        )
        o.taker = self._fresh_taker(o)
        self.orders[o.client_id] = o
        self._all[o.client_id] = o
        self._by_venue_id[o.venue_id] = o
        self._out.append(OrderAccepted(cmd.ts, o.client_id, o.venue_id, o.status))
        if qty != cmd.qty:  # reduce-only trimmed to the position
            self._out.append(
                OrderAmended(cmd.ts, o.client_id, o.venue_id, o.qty, o.price, o.trigger_price)
            )
        return None

    def _amend(self, cmd: AmendOrder) -> None:
        o = self.orders.get(cmd.client_id)

        def refuse(reason: str, code: int) -> None:
            self._out.append(CommandRejected(cmd.ts, cmd.client_id, "amend", reason, code))

        if o is None:
            return refuse("order not exists or too late to amend", ORDER_NOT_FOUND)
        qty = cmd.qty or o.qty
        price = cmd.price or o.price
        trigger = cmd.trigger_price or o.trigger_price
        if cmd.qty < 0 or cmd.price < 0 or cmd.trigger_price < 0:
            return refuse("negative value", PARAMS_ERROR)
        if cmd.price and o.is_market:
            return refuse("a market order has no price", PARAMS_ERROR)
        if cmd.trigger_price and not o.waiting_trigger:
            return refuse("trigger price can only change before the trigger", PARAMS_ERROR)
        if qty <= o.cum_qty or qty < self.instrument.min_lots:
            return refuse(f"qty {qty} not above the filled {o.cum_qty}", PARAMS_ERROR)
        if o.reduce_only:
            closable = self._closable(o.side)
            if closable == 0:
                return refuse(_WOULD_INCREASE, REDUCE_ONLY_RULE)
            qty = min(qty, o.cum_qty + closable)
        if (qty, price, trigger) == (o.qty, o.price, o.trigger_price):
            return refuse("order remains unchanged", PARAMS_ERROR)
        if cmd.trigger_price and o.waiting_trigger:
            bad = self._trigger_satisfied(o.trigger_direction, trigger)
            if bad:
                return refuse("trigger price already reached", bad)
        if o.tif == POST_ONLY and not o.waiting_trigger and self._crosses(o.side, price):
            return refuse(POST_ONLY_WOULD_TAKE, 0)
        if not o.reduce_only:
            ref = self._ref_price(o.order_type, price, trigger if o.waiting_trigger else 0)
            opening = self._opening_lots(o.side, qty - o.cum_qty)
            need = self._order_cost(o.side, opening, ref) if opening else 0
            if need and self._free(exclude=o.client_id) < need:
                return refuse("insufficient balance", INSUFFICIENT_BALANCE)
        o.qty, o.price, o.trigger_price = qty, price, trigger
        o.updated_ts = o.active_from = cmd.ts
        o.taker = self._fresh_taker(o)
        self._out.append(OrderAmended(cmd.ts, o.client_id, o.venue_id, qty, price, trigger))
        return None

    def _cancel_cmd(self, cmd: CancelOrder) -> None:
        o = self.orders.get(cmd.client_id)
        if o is None:
            reason = "order not exists or too late to cancel"
            self._out.append(
                CommandRejected(cmd.ts, cmd.client_id, "cancel", reason, ORDER_NOT_FOUND)
            )
            return
        self._close(o, CANCEL_BY_USER)

    # ------------------------------------------------------------- command helpers

    def _trigger_satisfied(self, direction: int, trigger: int) -> int:
        """The retCode if a trigger is already reached at the last price, else 0."""
        last = self.last_price
        if not last:
            return 0
        if direction == 1 and trigger <= last:
            return TRIGGER_EXPECT_RISING
        if direction == 2 and trigger >= last:
            return TRIGGER_EXPECT_FALLING
        return 0

    def _crosses(self, side: str, price: int) -> bool:
        """Would a limit at ``price`` take liquidity at the last price (zero spread)?"""
        last = self.last_price
        if not last:
            return False
        return price >= last if side == BUY else price <= last

    def _fresh_taker(self, o: SimOrder) -> bool:
        """A plain non-PostOnly limit crossing the last price: fills as a taker."""
        return (
            o.order_type == LIMIT
            and not o.waiting_trigger
            and o.tif != POST_ONLY
            and self._crosses(o.side, o.price)
        )

    def _closable(self, side: str) -> int:
        """Lots an order on ``side`` can close (0 if it would open or add)."""
        q = self.position.qty
        if side == BUY:
            return -q if q < 0 else 0
        return q if q > 0 else 0

    def _free_after_netting(self, side: str, lots: int, ref: int) -> int:
        """``available()`` once the part of ``lots`` on ``side`` that closes the position has
        executed at ``ref``: the closed part's margin is released, its PnL realized (profit
        included) and its taker fee paid. Equals ``available()`` for an order that only opens.
        """
        closing = min(lots, self._closable(side))
        if closing == 0 or not ref:
            return self._free()
        p = self.position
        rest = Position(p.qty, p.entry_value)
        fee = fee_for(self.instrument.notional(ref, closing), self.config.taker_fee_e8)
        pnl = apply_fill(rest, side, closing, ref, fee, self._nu)
        upnl = min(0, rest.unrealized(ref, self._nu)) if rest.qty else 0
        wallet = self.wallet + pnl - fee
        return wallet + upnl - initial_margin(rest.entry_value, self.leverage) - self.order_margin()

    def _opening_lots(self, side: str, lots: int) -> int:
        """Of ``lots`` on ``side``, how many would open or add to the position."""
        return max(0, lots - self._closable(side))

    def _ref_price(self, order_type: str, price: int, trigger: int) -> int:
        """Price used to value an order for margin: limit, else trigger, else last price."""
        if order_type == LIMIT:
            return price
        return trigger or self.last_price

    def _order_cost(self, side: str, opening: int, ref: int) -> int:
        """Bybit's order cost of ``opening`` lots at ``ref``: IM + fees to open and close."""
        notional = self.instrument.notional(ref, opening)
        return order_cost(notional, side == BUY, self.leverage, self.config.taker_fee_e8)

    def _order_im_values(self, side: str, lots: int, ref: int) -> int:
        opening = self._opening_lots(side, lots)
        return initial_margin(self.instrument.notional(ref, opening), self.leverage)

    def _order_im(self, o: SimOrder, lots: int) -> int:
        if o.reduce_only:
            return 0
        ref = self._ref_price(o.order_type, o.price, o.trigger_price if o.waiting_trigger else 0)
        return self._order_im_values(o.side, lots, ref)

    def _close(self, o: SimOrder, reason: str, *, expired: bool = False) -> None:
        """End an open order (cancel or expiry) and report it."""
        o.status = o.closed_status()
        o.close_reason = reason
        o.updated_ts = self._ts
        o.live = False
        del self.orders[o.client_id]
        if expired:
            self._out.append(OrderExpired(self._ts, o.client_id, o.venue_id, reason))
        else:
            self._out.append(OrderCancelled(self._ts, o.client_id, o.venue_id, reason))

    def _next_exec_id(self) -> str:
        self._exec_seq += 1
        return f"{self.id_prefix}-e{self._exec_seq}"

    # ------------------------------------------------------------------ candles

    def on_candle(self, candle: CandleClosed) -> list[Event]:
        """Everything that happened during ``candle``: triggers, fills, cancels caused by
        the position, expiries, liquidation, funding -- in path order, stamped ``candle.ts``.
        """
        if candle.symbol != self.symbol:
            raise SimVenueError(f"candle for {candle.symbol} fed to the {self.symbol} venue")
        if self.last_close_ms is not None and candle.close_ms <= self.last_close_ms:
            raise SimVenueError(
                f"candle closing at {candle.close_ms} is not after {self.last_close_ms}"
            )
        out: list[Event] = []
        self._out = out
        self._ts = candle.ts
        # With no order resting, a candle only matters if it can reach the liquidation price.
        if self.orders or (self.position.qty and self._liq_reachable(candle)):
            self._run_candle(candle)
        if self.position.qty:
            after = self.last_close_ms if self.last_close_ms is not None else candle.open_ms - 1
            interval = self.funding_interval_ms
            if interval > 0 and (after // interval + 1) * interval <= candle.close_ms:
                self._settle_funding(after, candle)
        self.last_price = candle.close
        self.last_close_ms = candle.close_ms
        self._out = []
        return out

    def _run_candle(self, candle: CandleClosed) -> None:
        pct = self.config.max_volume_pct
        self._cap = candle.volume * pct // 100 if pct > 0 else -1
        low, high, start = candle.low, candle.high, candle.open_ms
        self._low, self._high = low, high
        active: list[SimOrder] = []
        for o in self.orders.values():
            o.candle_filled = 0
            o.in_candle = o.active_from <= start
            # Only orders this candle's range can reach take part in the walk.
            o.live = o.in_candle and reachable(o, candle.open, high, low)
            if o.live:
                active.append(o)
        if not active and not self._liq_reachable(candle):
            self._end_candle()
            return
        self._active = active
        q = self.position.qty
        liq = self.liq_price()
        exits: list[SimOrder] = active
        opener = self._opens_at_open(active)
        if opener is not None:  # its position (and levels) exist for the whole path
            q, liq = (1 if opener.is_buy else -1), 0
            exits = [*active, *virtual_exits(opener)]
        if high_first(candle, q, liq, exits, self.config.both_hit):
            path = (high, low, candle.close)
        else:
            path = (low, high, candle.close)
        price = candle.open
        self._bar_open_ms = start
        self._bar_ms = candle.close_ms - start
        self._path_len = abs(path[0] - price) + abs(path[1] - path[0]) + abs(path[2] - path[1])
        self._leg_start, self._leg_done = price, 0
        self._walk(price, price)  # what acts at the open (gaps, market orders)
        if not self.orders and not self._liq_reachable(candle):
            # Nothing rests and the range cannot reach the liquidation price: along the
            # path ``_walk`` finds no event (the market orders filled at the open).
            self._active = []
            self._ts = candle.ts
            self._end_candle()
            return
        for o in self.orders.values():
            if o.in_candle and not o.candle_filled:
                o.taker = False  # a limit not taken at the open rests as a maker from here on
        for target in path:
            self._walk(price, target)
            self._leg_done += abs(target - price)
            self._leg_start = price = target
        self._active = []
        self._ts = candle.ts  # what ends with the candle is stamped at its close
        self._end_candle()

    def _opens_at_open(self, active: list[SimOrder]) -> SimOrder | None:
        """The first market order with attached levels that opens (or flips) at the open."""
        for o in active:
            if o.is_market and not o.trigger_price and (o.take_profit or o.stop_loss):
                if o.remaining > self._closable(o.side):
                    return o
                return None
        return None

    def _path_time(self, level: int) -> int:
        """When the path reaches ``level`` on the current leg (ms).

        The price moves at constant speed along ``open -> extreme -> extreme -> close``,
        so a point ``d`` ticks along a path of ``D`` ticks is reached at
        ``open_ms + (close_ms - open_ms) * d // D`` (the open itself: ``open_ms``; a bar
        that never moves: everything at ``open_ms``).
        """
        if self._path_len == 0:
            return self._bar_open_ms
        done = self._leg_done + abs(level - self._leg_start)
        return self._bar_open_ms + self._bar_ms * done // self._path_len

    def _end_candle(self) -> None:
        """Expire IOC/FOK remainders of orders that took part; reset the scratch flags."""
        for o in list(self.orders.values()):
            if o.in_candle and (o.tif == IOC or o.tif == FOK) and not o.waiting_trigger:
                self._close(o, f"{o.tif} remainder", expired=True)
            o.live = o.in_candle = False

    def _liq_reachable(self, candle: CandleClosed) -> bool:
        q = self.position.qty
        if q == 0:
            return False
        lp = self.liq_price()
        return (lp > 0 and candle.low <= lp) if q > 0 else candle.high >= lp

    def _walk(self, c: int, q: int) -> None:
        """Move the price from ``c`` to ``q`` (monotonic), acting on each event in turn.

        Events: liquidation (touch of the liq price), triggers (touch), limit fills
        (trade-through). Anything already at or beyond ``c`` acts at ``c`` (a gap).
        The next event is the nearest along the move; ties by kind, then placement.
        """
        down = q < c
        up = q > c
        active = self._active
        while True:
            best_level = 0
            best_key: tuple[int, int] | None = None
            best: SimOrder | None = None
            pos = self.position.qty
            if pos:
                lp = self.liq_price()
                level = -1
                if pos > 0:
                    if lp >= c:
                        level = c if lp > 0 else -1
                    elif down and lp >= q:
                        level = lp
                elif lp <= c:
                    level = c
                elif up and lp <= q:
                    level = lp
                if level >= 0:
                    best_level, best_key = level, (_LIQ, 0)
            for o in active:
                if not o.live:
                    continue
                level = -1
                kind = _FILL
                price = o.price
                if o.trigger_price and not o.triggered:
                    kind = _TRIGGER
                    t = o.trigger_price
                    if o.trigger_direction == 1:
                        if t <= c:
                            level = c
                        elif up and t <= q:
                            level = t
                    elif t >= c:
                        level = c
                    elif down and t >= q:
                        level = t
                elif o.order_type == MARKET:
                    level = c
                elif o.side == BUY:
                    if price > c or (o.taker and price == c):
                        level = c
                    elif down and q < price:
                        level = price
                elif price < c or (o.taker and price == c):
                    level = c
                elif up and q > price:
                    level = price
                if level < 0:
                    continue
                key = (kind, o.seq)
                if (
                    best_key is None
                    or (down and level > best_level)
                    or (up and level < best_level)
                    or (level == best_level and key < best_key)
                ):
                    best_level, best_key, best = level, key, o
            if best_key is None:
                return
            c = best_level
            self._ts = self._path_time(c)  # the event happens when the path gets there
            if best is None:
                self._liquidate()
            elif best_key[0] == _TRIGGER:
                self._trigger(best, c)
            elif best.order_type == MARKET:
                self._fill_taker(best, c)
            elif best.taker:
                slip = self.config.slippage_ticks
                if best.side == BUY:
                    self._fill(best, min(best.price, c + slip), maker=False)
                else:
                    self._fill(best, max(best.price, c - slip, 1), maker=False)
            else:
                # A resting limit fills at its price (clamped into the bar if it gapped).
                price = min(max(best.price, self._low), self._high)
                self._fill(best, price, maker=best.tif != IOC and best.tif != FOK)

    def _trigger(self, o: SimOrder, price: int) -> None:
        """A conditional order reached its trigger at ``price``: report, then act as a new
        market or limit order placed at that price."""
        o.triggered = True
        o.status = NEW
        o.updated_ts = self._ts
        self._out.append(OrderTriggered(self._ts, o.client_id, o.venue_id))
        if o.is_market:
            self._fill_taker(o, price)
            return
        if self._crosses_at(o, price):
            if o.tif == POST_ONLY:
                self._close(o, POST_ONLY_WOULD_TAKE)
                return
            o.taker = True  # fills now at min(limit, price + slippage)
        else:
            o.taker = False

    @staticmethod
    def _crosses_at(o: SimOrder, price: int) -> bool:
        return o.price >= price if o.is_buy else o.price <= price

    def _fill_taker(self, o: SimOrder, price: int) -> None:
        slip = self.config.slippage_ticks
        self._fill(o, price + slip if o.is_buy else max(1, price - slip), maker=False)

    def _fill(self, o: SimOrder, price: int, *, maker: bool) -> None:
        """Fill as much of ``o`` at ``price`` as the volume cap and reduce-only allow."""
        lots = o.remaining
        if self._cap >= 0:
            lots = min(lots, self._cap - o.candle_filled)
        if o.reduce_only:
            closable = self._closable(o.side)
            if closable == 0:
                self._close(o, CANCEL_BY_REDUCE_ONLY)
                return
            lots = min(lots, closable)
        if lots <= 0 or (o.tif == FOK and lots < o.remaining):
            o.live = False  # nothing more for this order during this candle
            return
        inst = self.instrument
        notional = inst.notional(price, lots)
        fee = fee_for(notional, self.config.maker_fee_e8 if maker else self.config.taker_fee_e8)
        apply_fill(self.position, o.side, lots, price, fee, self._nu)
        self._liq_dirty = True
        o.cum_qty += lots
        o.cum_value += notional
        o.cum_fee += fee
        o.candle_filled += lots
        o.updated_ts = self._ts
        fill = Fill(
            self._ts,
            o.client_id,
            o.venue_id,
            self._next_exec_id(),
            self.symbol,
            o.side,
            price,
            lots,
            fee,
            maker,
        )
        self._fills.append(fill)
        self._out.append(fill)
        if o.cum_qty == o.qty:
            o.status = FILLED
            o.live = False
            del self.orders[o.client_id]
        else:
            o.status = PARTIALLY_FILLED
            if self._cap >= 0 and o.candle_filled >= self._cap:
                o.live = False
        if self.orders:  # the orders still open follow the new position
            self._drop_stale_reduce_only()
        if o.take_profit or o.stop_loss:
            self._arm(o, lots)
        if self.orders:
            self._resize_armed()

    def _arm(self, parent: SimOrder, lots: int) -> None:
        """Arm ``parent``'s attached levels at its first fill (of ``lots``); newer levels
        replace older armed ones (one position TP and SL, Full mode).

        They take part in the rest of the candle being walked, so a level the path reaches
        after the fill acts in this candle, and one already reached acts at once.
        """
        for purpose in LEVELS:
            level = parent.stop_loss if purpose == "stop" else parent.take_profit
            cid = attached_id(parent.client_id, purpose)
            if not level or cid in self._all:
                continue
            for old in list(self.orders.values()):
                if old.parent and old.purpose == purpose:
                    self._close(old, CANCEL_BY_TPSL_CLEAR)
            self._order_seq += 1
            vid = f"{self.id_prefix}-o{self._order_seq}"
            o = armed_order(parent, purpose, level, lots, vid, self._order_seq)
            o.created_ts = o.updated_ts = o.active_from = self._ts
            o.in_candle = o.live = True
            self.orders[cid] = o
            self._all[cid] = o
            self._by_venue_id[vid] = o
            self._active.append(o)
            self._out.append(OrderAccepted(self._ts, cid, vid, UNTRIGGERED))

    def _resize_armed(self) -> None:
        """Armed levels cover the whole position (Full mode): follow its size."""
        for o in self.orders.values():
            if o.parent:
                closable = self._closable(o.side)
                if closable and o.cum_qty + closable != o.qty:
                    o.qty = o.cum_qty + closable
                    o.updated_ts = self._ts
                    self._out.append(
                        OrderAmended(self._ts, o.client_id, o.venue_id, o.qty, 0, o.trigger_price)
                    )

    def _drop_stale_reduce_only(self) -> None:
        """Cancel reduce-only orders the position no longer allows (flat or flipped)."""
        for o in list(self.orders.values()):
            if o.reduce_only and self._closable(o.side) == 0:
                self._close(o, CANCEL_BY_REDUCE_ONLY)

    def _liquidate(self) -> None:
        """Cancel every open order, then close the position at the bankruptcy price."""
        for o in list(self.orders.values()):
            self._close(o, CANCEL_BEFORE_LIQ)
        p = self.position
        price = self.bankruptcy_price()
        lots = abs(p.qty)
        side = SELL if p.qty > 0 else BUY
        fee = fee_for(self.instrument.notional(price, lots), self.config.liquidation_fee_e8)
        if self.margin_mode == "cross":  # the wallet is used up: the fee takes what is left
            left = self.wallet + p.unrealized(price, self._nu)
            fee = max(0, min(fee, left))
        apply_fill(p, side, lots, price, fee, self._nu)
        self._liq_dirty = True
        ev = Liquidated(self._ts, self.symbol, self._next_exec_id(), side, price, lots, fee)
        self._liquidations.append(ev)
        self._out.append(ev)

    def _settle_funding(self, after_ms: int, candle: CandleClosed) -> None:
        """Funding for each settlement time the candle crosses, on the position at its close:
        ``amount = notional at the close * rate`` (paid by longs when the rate is positive),
        rounded like a fee (up when paid, toward zero when received)."""
        for t in funding_times(after_ms, candle.close_ms, self.funding_interval_ms):
            q = self.position.qty
            if q == 0:
                return
            rate = self._funding.rate_at(t)
            notional = self.instrument.notional(candle.close, abs(q))
            amount = fee_for(notional if q > 0 else -notional, rate)
            if amount == 0:
                continue
            apply_funding(self.position, amount)
            self._liq_dirty = True
            exec_id = self._next_exec_id()
            ev = FundingPaid(self._ts, self.symbol, exec_id, amount, rate, candle.close)
            self._fundings.append(ev)
            self._out.append(ev)
