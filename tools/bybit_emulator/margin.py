"""Account settings writes: ``/v5/position/set-leverage`` and ``/v5/account/set-margin-mode``.

They change the matching engine's leverage and margin mode (``SimVenue.set_leverage`` /
``set_margin_mode``), so the emulated account liquidates as the card's backtest would.
Answers as Bybit's: ``110043`` "Set leverage not modified" when the leverage already is
the asked one; ``set-margin-mode`` takes ``ISOLATED_MARGIN`` or ``REGULAR_MARGIN`` (cross)
and answers ``{"reasons": []}``; ``PORTFOLIO_MARGIN`` is refused (not simulated), and so
is a switch while a position is open (Bybit's ``3400045`` with a reason).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from . import params as P
from .errors import ApiError, param_error
from .ledger import PrivateMsg
from .state import EmulatorState

LEVERAGE_NOT_MODIFIED = 110043
MARGIN_MODE_FAILED = 3400045
MODES = {"ISOLATED_MARGIN": "isolated", "REGULAR_MARGIN": "cross"}


def _leverage(p: dict[str, Any], name: str, maximum: int) -> int:
    text = P.require(p, name)
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise param_error(f"{name} {text!r} is not a number") from None
    if value != value.to_integral_value() or not 1 <= value <= maximum:
        raise param_error(f"{name} {text}: a whole leverage in [1, {maximum}] here")
    return int(value)


def set_leverage(st: EmulatorState, p: dict[str, Any]) -> tuple[dict[str, Any], list[PrivateMsg]]:
    P.check_category(p)
    symbol = P.require(p, "symbol")
    if symbol != st.inst.symbol:
        raise param_error(f"symbol invalid: {symbol!r}")
    maximum = int(Decimal(st.inst.spec.max_leverage))
    buy = _leverage(p, "buyLeverage", maximum)
    sell = _leverage(p, "sellLeverage", maximum)
    if buy != sell:
        raise param_error("buyLeverage must equal sellLeverage in one-way mode")
    if buy == st.venue.leverage:
        raise ApiError(LEVERAGE_NOT_MODIFIED, "Set leverage not modified")
    try:
        st.venue.set_leverage(buy)
    except ValueError as exc:  # below the maintenance margin rate
        raise param_error(str(exc)) from None
    return {}, []


def set_margin_mode(
    st: EmulatorState, p: dict[str, Any]
) -> tuple[dict[str, Any], list[PrivateMsg]]:
    wanted = P.require(p, "setMarginMode")
    mode = MODES.get(wanted)
    if mode is None:
        raise param_error(f"setMarginMode {wanted!r}: ISOLATED_MARGIN or REGULAR_MARGIN here")
    if mode != st.venue.margin_mode and st.venue.position.qty:
        raise ApiError(MARGIN_MODE_FAILED, "Set margin mode failed: a position is open")
    st.venue.set_margin_mode(mode)
    return {"reasons": []}, []
