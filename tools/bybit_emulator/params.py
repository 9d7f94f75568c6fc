"""Request-parameter parsing with Bybit's error codes: decimal strings to ticks and lots on the
instrument's grid (off-grid or malformed -> 10001), pagination cursors, limits.
"""

from __future__ import annotations

import re
from typing import Any

from engine.instrument import Instrument, InstrumentError, OffGridError

from .errors import ApiError, param_error

LINK_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
CURSOR_PREFIX = "page_args="


def text(params: dict[str, Any], name: str, default: str = "") -> str:
    value = params.get(name, default)
    if value is None:
        return default
    return str(value)


def require(params: dict[str, Any], name: str) -> str:
    value = text(params, name)
    if not value:
        raise param_error(f"{name} is required")
    return value


def flag(params: dict[str, Any], name: str) -> bool:
    """A JSON boolean (or the strings "true"/"false", "1"/"0" a GET query would carry)."""
    value = params.get(name, False)
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1"):
        return True
    if str(value).lower() in ("false", "0", ""):
        return False
    raise param_error(f"{name} must be a boolean")


def ticks(inst: Instrument, params: dict[str, Any], name: str) -> int:
    """A price parameter in ticks; 0 when absent or "0". Off the tick grid -> 10001."""
    raw = text(params, name)
    if raw in ("", "0"):
        return 0
    try:
        value = inst.price_to_ticks(raw)
    except (OffGridError, InstrumentError):
        raise param_error(f"{name} invalid: {raw} (tickSize {inst.spec.tick_size})") from None
    if value < 0:
        raise param_error(f"{name} invalid: {raw}")
    return value


def lots(inst: Instrument, params: dict[str, Any], name: str) -> int:
    """A quantity parameter in lots; 0 when absent. Off the qty grid -> 10001."""
    raw = text(params, name)
    if raw == "":
        return 0
    try:
        value = inst.qty_to_lots(raw)
    except (OffGridError, InstrumentError):
        raise param_error(f"Qty invalid: {raw} (qtyStep {inst.spec.qty_step})") from None
    if value < 0:
        raise param_error(f"Qty invalid: {raw}")
    return value


def integer(params: dict[str, Any], name: str, default: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(str(raw))
    except ValueError:
        raise param_error(f"{name} must be an integer") from None


def limit(params: dict[str, Any], default: int, maximum: int) -> int:
    n = integer(params, "limit", default)
    if not 1 <= n <= maximum:
        raise param_error(f"limit must be within [1, {maximum}]")
    return n


def check_category(params: dict[str, Any]) -> None:
    category = text(params, "category")
    if category != "linear":
        raise param_error(f"category only supports linear here, not {category!r}")


def check_link_id(link: str) -> None:
    if not LINK_ID_RE.match(link):
        raise ApiError(10001, f"params error: orderLinkId {link!r} must be 1-36 of [A-Za-z0-9_-]")


def cursor_offset(params: dict[str, Any]) -> int:
    """Decode a cursor this emulator issued (``page_args=N``, URL-encoded or not)."""
    raw = text(params, "cursor")
    if not raw:
        return 0
    raw = raw.replace("%3D", "=").replace("%3d", "=").replace("%26", "&")
    if not raw.startswith(CURSOR_PREFIX):
        raise param_error(f"cursor {raw!r} was not issued by this server")
    try:
        return int(raw[len(CURSOR_PREFIX) :].rstrip("&"))
    except ValueError:
        raise param_error(f"cursor {raw!r} is malformed") from None


def page(items: list[Any], offset: int, size: int) -> tuple[list[Any], str]:
    """One page of ``items`` and the ``nextPageCursor`` ("" on the last page)."""
    chunk = items[offset : offset + size]
    nxt = offset + size
    return chunk, (f"page_args%3D{nxt}" if nxt < len(items) else "")
