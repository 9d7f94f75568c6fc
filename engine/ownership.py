"""Whose is a venue event: this session's, or the account's other activity.

A session's orders carry its client-id prefix (``engine.commands.client_prefix``:
``<name>-<hash>-<n>``), so ownership is a prefix test that needs no state: an
execution or order message whose client id lacks it (a manual order: ``""``;
another session on the same account: ``L1-...``) is *external*. Fills of take-profit
/ stop-loss orders attached to this session's orders are this session's: the adapter
reports them under the parent's client id (or an id derived from it, which keeps the
prefix), so the same test admits them.

``as_input`` is applied where venue events enter the log (the daemon's input path and
reconciliation): an external fill becomes ``ExternalFill``, an external order
message ``ExternalOrder``; neither reaches this session's orders, position, trades,
fees or PnL.
"""

from __future__ import annotations

from typing import Final

from engine.commands import client_prefix
from engine.events import (
    CANCELLED,
    DEACTIVATED,
    REJECTED,
    TRIGGERED,
    EventBase,
    ExternalFill,
    ExternalOrder,
    Fill,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderTriggered,
)

_ORDER_STATUS: Final[dict[type, str]] = {
    OrderRejected: REJECTED,
    OrderTriggered: TRIGGERED,
    OrderAmended: "Amended",
    OrderCancelled: CANCELLED,
    OrderExpired: DEACTIVATED,
}


class Ownership:
    """This session's client-id prefix, and the test every venue event goes through."""

    __slots__ = ("prefix",)

    def __init__(self, session_id: str) -> None:
        self.prefix = client_prefix(session_id) + "-"

    def owns(self, client_id: str) -> bool:
        return client_id.startswith(self.prefix)

    def as_input(self, event: EventBase) -> EventBase:
        """``event`` itself if it is this session's (or carries no client id), else the
        external event that records it."""
        kind = type(event)
        if kind is Fill:
            assert isinstance(event, Fill)
            if self.owns(event.client_id):
                return event
            return external_fill(event)
        status = _ORDER_STATUS.get(kind)
        if status is None and kind is OrderAccepted:
            status = event.status  # type: ignore[attr-defined]
        if status is None:
            return event
        client_id: str = event.client_id  # type: ignore[attr-defined]
        if self.owns(client_id):
            return event
        venue_id: str = getattr(event, "venue_id", "")
        return ExternalOrder(event.ts, venue_id, client_id, "", 0, 0, status)


def external_fill(f: Fill) -> ExternalFill:
    return ExternalFill(
        f.ts, f.client_id, f.venue_id, f.exec_id, f.symbol, f.side, f.price, f.qty, f.fee,
        f.exec_type,
    )  # fmt: skip
