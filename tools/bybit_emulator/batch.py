"""The batch order writes (``/v5/order/create-batch``, ``amend-batch``, ``cancel-batch``), REST
and Trade API alike: one request ``{"category", "request": [params, ...]}``, each item applied
in order as its single form would be, answered item by item.

Bybit's "Batch Place Order": at most 20 orders per request for linear (10 for spot); the
reply's ``list`` holds one row per item (``category, symbol, orderId, orderLinkId`` and, for a
create, ``createAt``; empty ids for a failed item) and ``retExtInfo.list`` one ``{"code",
"msg"}`` per item, in request order. A refused item does not stop the others; a request that
is malformed as a whole (no items, too many, a category other than linear) is refused whole.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from .errors import ApiError, param_error
from .ledger import PrivateMsg
from .state import EmulatorState

#: batch path -> the single write each item is
SINGLE: Final[dict[str, str]] = {
    "/v5/order/create-batch": "/v5/order/create",
    "/v5/order/amend-batch": "/v5/order/amend",
    "/v5/order/cancel-batch": "/v5/order/cancel",
}
MAX_ITEMS: Final = 20  # linear
WriteFn = Callable[[EmulatorState, dict[str, Any]], tuple[dict[str, Any], list[PrivateMsg]]]


def apply_batch(
    state: EmulatorState,
    path: str,
    body: dict[str, Any],
    write: WriteFn,
    now_ms: int,
    on_create: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[dict[str, Any], dict[str, Any], list[PrivateMsg]]:
    """Apply one batch request: (result ``{"list"}``, ``retExtInfo`` ``{"list"}``, messages).

    ``write`` is the single form's function; ``on_create`` sees each create item as it is
    applied (the bench's arrival stamps). Raises ``ApiError`` for a request refused whole."""
    category = str(body.get("category", ""))
    if category != "linear":
        raise param_error(f"category {category!r}: the emulator serves linear batches only")
    items = body.get("request")
    if not isinstance(items, list) or not items:
        raise param_error("request must be a non-empty list of orders")
    if len(items) > MAX_ITEMS:
        raise param_error(f"a batch holds at most {MAX_ITEMS} orders, got {len(items)}")
    rows: list[dict[str, Any]] = []
    codes: list[dict[str, Any]] = []
    msgs: list[PrivateMsg] = []
    create = SINGLE[path] == "/v5/order/create"
    for item in items:
        params = {**item, "category": category} if isinstance(item, dict) else {}
        if create and on_create is not None:
            on_create(params)
        row: dict[str, Any] = {
            "category": category,
            "symbol": str(params.get("symbol", "")),
            "orderId": "",
            "orderLinkId": str(params.get("orderLinkId", "")),
        }
        try:
            result, more = write(state, params)
        except ApiError as exc:
            rows.append({**row, "createAt": ""} if create else row)
            codes.append({"code": exc.code, "msg": exc.message})
            continue
        msgs.extend(more)
        row.update({k: v for k, v in result.items() if k in ("orderId", "orderLinkId")})
        rows.append({**row, "createAt": str(now_ms)} if create else row)
        codes.append({"code": 0, "msg": "OK"})
    return {"list": rows}, {"list": codes}, msgs
