"""Bybit v5 JSON shapes built from the emulator's records (types as the samples: numbers as
strings, ``positionIdx``/``triggerDirection``/``seq``/``smpGroup`` as JSON numbers, flags as
booleans). Field sets follow /work/shared/reference/bybit-samples/*.json.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.events import CandleClosed
from engine.instrument import MONEY_SCALE, Instrument

from .records import ExecRecord, OrderRecord

_MONEY = Decimal(1).scaleb(-8)


def money_str(money: int) -> str:
    """Money units as Bybit prints USDT amounts: plain decimal, no trailing zeros ("0.05")."""
    text = f"{(Decimal(money) * _MONEY):f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def ratio_price(inst: Instrument, value: int, lots: int) -> str:
    """Average price of ``value`` money over ``lots`` (8 decimals at most, trailing zeros cut)."""
    if lots <= 0:
        return "0"
    ticks = Decimal(value) / Decimal(lots * inst.notional_unit)
    price = (ticks * inst.tick).quantize(_MONEY)
    text = f"{price:f}".rstrip("0").rstrip(".")
    return text or "0"


def rate_str(rate_e8: int) -> str:
    return money_str(rate_e8)


def envelope(result: Any, time_ms: int, code: int = 0, msg: str = "OK") -> dict[str, Any]:
    """The REST envelope every response uses, errors included (reference §1.5)."""
    return {
        "retCode": code,
        "retMsg": msg,
        "result": result if result is not None else {},
        "retExtInfo": {},
        "time": time_ms,
    }


def order_obj(inst: Instrument, o: OrderRecord, *, ws: bool = False) -> dict[str, Any]:
    """An order as ``/v5/order/realtime`` and ``/history`` list it (``ws``: the order topic)."""
    p = inst.ticks_to_price
    q = inst.lots_to_qty
    leaves = o.leaves_qty
    out: dict[str, Any] = {
        "orderId": o.order_id,
        "orderLinkId": o.link_id,
        "parentOrderLinkId": o.parent_link,
        "blockTradeId": "",
        "symbol": o.symbol,
        "price": p(o.price),
        "qty": q(o.qty),
        "side": o.side,
        "isLeverage": "",
        "positionIdx": 0,
        "orderStatus": o.status,
        "createType": _create_type(o),
        "cancelType": o.cancel_type,
        "rejectReason": o.reject_reason,
        "avgPrice": ratio_price(inst, o.cum_value, o.cum_qty),
        "leavesQty": q(leaves),
        "leavesValue": money_str(inst.notional(o.price, leaves)),
        "cumExecQty": q(o.cum_qty),
        "cumExecValue": money_str(o.cum_value),
        "cumExecFee": money_str(o.cum_fee),
        "timeInForce": o.tif,
        "orderType": o.order_type,
        "stopOrderType": o.stop_type or ("Stop" if o.conditional else "UNKNOWN"),
        "orderIv": "",
        "triggerPrice": p(o.trigger_price),
        "takeProfit": p(o.take_profit),
        "stopLoss": p(o.stop_loss),
        "tpTriggerBy": "LastPrice" if o.take_profit else "UNKNOWN",
        "slTriggerBy": "LastPrice" if o.stop_loss else "UNKNOWN",
        "triggerDirection": o.trigger_direction,
        "triggerBy": "LastPrice" if o.conditional else "UNKNOWN",
        "lastPriceOnCreated": p(o.last_price_on_created),
        "reduceOnly": o.reduce_only,
        "closeOnTrigger": False,
        "smpType": "None",
        "smpGroup": 0,
        "smpOrderId": "",
        "tpslMode": "Full" if (o.take_profit or o.stop_loss or o.stop_type) else "",
        "tpLimitPrice": "",
        "slLimitPrice": "",
        "placeType": "",
        "createdTime": str(o.created_ms),
        "updatedTime": str(o.updated_ms or o.created_ms),
        "cumFeeDetail": {inst.spec.quote_coin: money_str(o.cum_fee)} if o.cum_fee else {},
        "rpiTakerAccess": False,
        "rpiMatchedQty": "0",
    }
    if ws:
        out["category"] = "linear"
        out["closedPnl"] = "0"
        out["feeCurrency"] = ""
    else:
        out["slippageToleranceType"] = "UNKNOWN"
        out["slippageTolerance"] = ""
        out["extraFees"] = ""
    return out


def _create_type(o: OrderRecord) -> str:
    if o.stop_type:  # armed from an order's attached TP/SL
        return f"CreateBy{o.stop_type}"
    return "CreateByStopOrder" if o.conditional else "CreateByUser"


def exec_obj(inst: Instrument, e: ExecRecord, *, ws: bool = False) -> dict[str, Any]:
    """An execution as ``/v5/execution/list`` lists it (``ws``: the execution topic)."""
    p = inst.ticks_to_price
    q = inst.lots_to_qty
    out: dict[str, Any] = {
        "symbol": e.symbol,
        "orderType": e.order_type,
        "underlyingPrice": "",
        "orderLinkId": e.link_id,
        "side": e.side,
        "indexPrice": "",
        "orderId": e.order_id,
        "stopOrderType": e.stop_order_type,
        "leavesQty": q(e.leaves_qty),
        "execTime": str(e.exec_ms),
        "feeCurrency": inst.spec.quote_coin,
        "isMaker": e.is_maker,
        "execFee": money_str(e.fee),
        "feeRate": rate_str(e.fee_rate_e8),
        "execId": e.exec_id,
        "tradeIv": "",
        "blockTradeId": "",
        "markPrice": p(e.mark_price),
        "execPrice": p(e.price),
        "markIv": "",
        "orderQty": q(e.order_qty),
        "orderPrice": p(e.order_price),
        "execValue": money_str(e.value),
        "execType": e.exec_type,
        "execQty": q(e.qty),
        "closedSize": q(e.closed_qty),
        "extraFees": "",
        "seq": e.seq,
        "createType": "CreateByUser",
    }
    if ws:
        out["category"] = "linear"
        out["execPnl"] = money_str(e.exec_pnl)
        out["extraFees"] = []  # a list on the stream, "" in REST (as the samples)
        out["isLeverage"] = "0"
        out["marketUnit"] = ""
    return out


class PositionView:
    """What a position object needs beyond the records (read from the matching engine)."""

    __slots__ = (
        "qty",
        "entry_value",
        "realized",
        "fees",
        "funding",
        "mark",
        "liq",
        "leverage",
        "mm_e8",
        "created_ms",
        "updated_ms",
        "seq",
    )

    def __init__(
        self,
        *,
        qty: int,
        entry_value: int,
        realized: int,
        fees: int,
        funding: int,
        mark: int,
        liq: int,
        leverage: int,
        mm_e8: int,
        created_ms: int,
        updated_ms: int,
        seq: int,
    ) -> None:
        self.qty, self.entry_value, self.realized = qty, entry_value, realized
        self.fees, self.funding, self.mark, self.liq = fees, funding, mark, liq
        self.leverage, self.mm_e8 = leverage, mm_e8
        self.created_ms, self.updated_ms, self.seq = created_ms, updated_ms, seq

    def unrealized(self, inst: Instrument) -> int:
        value = abs(self.qty) * self.mark * inst.notional_unit
        if self.qty == 0:
            return 0
        return value - self.entry_value if self.qty > 0 else self.entry_value - value

    def im(self) -> int:
        return -(-self.entry_value // max(1, self.leverage))

    def mm(self) -> int:
        return -(-self.entry_value * self.mm_e8 // MONEY_SCALE)


def position_obj(inst: Instrument, v: PositionView, *, ws: bool = False) -> dict[str, Any]:
    """The one-way position row (``ws``: the position topic, ``entryPrice`` for ``avgPrice``)."""
    p = inst.ticks_to_price
    size = abs(v.qty)
    side = "" if v.qty == 0 else ("Buy" if v.qty > 0 else "Sell")
    avg = ratio_price(inst, v.entry_value, size)
    realised = money_str(v.realized - v.fees - v.funding)
    out: dict[str, Any] = {
        "positionIdx": 0,
        "riskId": 1,
        "riskLimitValue": "2000000",
        "symbol": inst.symbol,
        "side": side,
        "size": inst.lots_to_qty(size),
        "avgPrice": avg,
        "positionValue": money_str(v.entry_value),
        "tradeMode": 0,
        "positionStatus": "Normal",
        "autoAddMargin": 0,
        "adlRankIndicator": 2 if size else 0,
        "leverage": str(v.leverage),
        "breakEvenPrice": avg,
        "positionBalance": money_str(v.im()),
        "markPrice": p(v.mark),
        "liqPrice": p(v.liq) if v.liq > 0 and size else "",
        "bustPrice": "",
        "positionMM": money_str(v.mm()),
        "positionMMByMp": money_str(v.mm()),
        "positionIM": money_str(v.im()),
        "positionIMByMp": money_str(v.im()),
        "tpslMode": "Full",
        "takeProfit": p(0),
        "stopLoss": p(0),
        "trailingStop": p(0),
        "unrealisedPnl": money_str(v.unrealized(inst)),
        "curRealisedPnl": realised,
        "cumRealisedPnl": realised,
        "seq": v.seq,
        "isReduceOnly": False,
        "mmrSysUpdatedTime": "",
        "leverageSysUpdatedTime": "",
        "sessionAvgPrice": "",
        "createdTime": str(v.created_ms),
        "updatedTime": str(v.updated_ms),
    }
    if ws:
        out["entryPrice"] = out.pop("avgPrice")
        out["category"] = "linear"
    else:
        out["mmrSysUpdateTime"] = ""  # the REST docs example spells it so; send both
    return out


def wallet_obj(
    inst: Instrument, wallet: int, available: int, pos: PositionView, order_im: int
) -> dict[str, Any]:
    """The UNIFIED account with its one coin (the quote coin), as ``wallet-balance`` lists it."""
    upl = pos.unrealized(inst)
    equity = wallet + upl
    im = pos.im() + order_im
    realised = money_str(pos.realized - pos.fees - pos.funding)
    coin = {
        "availableToBorrow": "",
        "bonus": "0",
        "accruedInterest": "0",
        "availableToWithdraw": money_str(available),
        "totalOrderIM": money_str(order_im),
        "equity": money_str(equity),
        "totalPositionMM": money_str(pos.mm()),
        "usdValue": money_str(equity),
        "spotHedgingQty": "0",
        "unrealisedPnl": money_str(upl),
        "collateralSwitch": True,
        "borrowAmount": "0",
        "totalPositionIM": money_str(pos.im()),
        "walletBalance": money_str(wallet),
        "cumRealisedPnl": realised,
        "locked": "0",
        "marginCollateral": True,
        "coin": inst.spec.quote_coin,
        "spotBorrow": "0",
    }
    return {
        "totalEquity": money_str(equity),
        "accountIMRate": money_str(im * MONEY_SCALE // equity) if equity > 0 else "0",
        "accountIMRateByMp": "0",
        "totalMarginBalance": money_str(equity),
        "totalInitialMargin": money_str(im),
        "totalInitialMarginByMp": money_str(im),
        "accountType": "UNIFIED",
        "totalAvailableBalance": money_str(available),
        "accountMMRate": money_str(pos.mm() * MONEY_SCALE // equity) if equity > 0 else "0",
        "accountMMRateByMp": "0",
        "totalPerpUPL": money_str(upl),
        "totalWalletBalance": money_str(wallet),
        "accountLTV": "0",
        "totalMaintenanceMargin": money_str(pos.mm()),
        "totalMaintenanceMarginByMp": money_str(pos.mm()),
        "coin": [coin],
    }


def kline_row(inst: Instrument, c: CandleClosed) -> list[str]:
    """``[startTime, open, high, low, close, volume, turnover]`` as strings (REST kline)."""
    p = inst.ticks_to_price
    return [
        str(c.open_ms),
        p(c.open),
        p(c.high),
        p(c.low),
        p(c.close),
        inst.lots_to_qty(c.volume),
        money_str(c.turnover or inst.notional(c.close, c.volume)),
    ]


def kline_ws_item(
    inst: Instrument, c: CandleClosed, interval: str, *, confirm: bool, at_ms: int
) -> dict[str, Any]:
    """One element of a ``kline.{interval}.{symbol}`` push."""
    p = inst.ticks_to_price
    return {
        "start": c.open_ms,
        "end": c.close_ms - 1,
        "interval": interval,
        "open": p(c.open),
        "close": p(c.close),
        "high": p(c.high),
        "low": p(c.low),
        "volume": inst.lots_to_qty(c.volume),
        "turnover": money_str(c.turnover or inst.notional(c.close, c.volume)),
        "confirm": confirm,
        "timestamp": at_ms,
    }


def partial_bar(c: CandleClosed) -> CandleClosed:
    """The bar as seen halfway: the path is assumed open -> nearer extreme -> other -> close
    (a rising bar visits its low first), and halfway stands at the first extreme with half
    the volume. Deterministic, and never shows a price the bar did not trade.
    """
    first = c.low if c.close >= c.open else c.high
    return CandleClosed(
        ts=c.open_ms + (c.close_ms - c.open_ms) // 2,
        symbol=c.symbol,
        timeframe=c.timeframe,
        open_ms=c.open_ms,
        close_ms=c.close_ms,
        open=c.open,
        high=max(c.open, first),
        low=min(c.open, first),
        close=first,
        volume=c.volume // 2,
        turnover=c.turnover // 2,
    )
