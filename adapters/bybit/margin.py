"""Put the card's margin settings on the account: margin mode, then leverage.

``/v5/account/set-margin-mode`` (``REGULAR_MARGIN`` = cross, ``ISOLATED_MARGIN``) and
``/v5/position/set-leverage`` (``buyLeverage`` = ``sellLeverage`` in one-way mode). Both
are idempotent, so the REST client retries them like reads. Bybit answers 110043 "Set
leverage not modified" when the leverage already is the one asked: that is success.
Anything else refused raises ``MarginSettingRefused`` with the venue's answer, and the
caller must not trade (the venue would margin and liquidate unlike the backtest).
"""

from __future__ import annotations

from typing import Any, Final, Protocol

from .errors import ApiError, BybitError

MODE_NAMES: Final = {"cross": "REGULAR_MARGIN", "isolated": "ISOLATED_MARGIN"}
LEVERAGE_NOT_MODIFIED: Final = 110043


class MarginSettingRefused(BybitError):
    """The venue did not take the card's leverage or margin mode."""


class _Rest(Protocol):
    async def call(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]: ...


async def apply_margin(
    rest: _Rest, category: str, symbol: str, leverage: int, mode: str
) -> list[str]:
    """Set ``mode`` then ``leverage``; returns one line per answer (for the log)."""
    name = MODE_NAMES.get(mode)
    if name is None:
        raise MarginSettingRefused(f"margin_mode {mode!r}: expected cross or isolated")
    answers: list[str] = []
    path = "/v5/account/set-margin-mode"
    try:
        result = await rest.call(path, {"setMarginMode": name})
    except ApiError as exc:
        raise MarginSettingRefused(f"{path} {name}: retCode {exc.code}: {exc.message}") from None
    reasons = result.get("reasons") or []
    if reasons:
        raise MarginSettingRefused(f"{path} {name}: refused: {reasons}")
    answers.append(f"{path} {name}: OK")
    path = "/v5/position/set-leverage"
    lev = str(leverage)
    params = {"category": category, "symbol": symbol, "buyLeverage": lev, "sellLeverage": lev}
    try:
        await rest.call(path, params)
        answers.append(f"{path} {symbol} {lev}x: OK")
    except ApiError as exc:
        if exc.code != LEVERAGE_NOT_MODIFIED:
            raise MarginSettingRefused(
                f"{path} {symbol} {lev}x: retCode {exc.code}: {exc.message}"
            ) from None
        answers.append(f"{path} {symbol} {lev}x: already set ({exc.message})")
    return answers
