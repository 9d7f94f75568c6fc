"""Fault switches the emulator consults on every request and message.

One mutable ``Faults`` object per emulator, changed by tests through the handle
(``handle.set_faults(...)``) or by anyone through ``POST /_emulator/faults`` with a JSON
object of the same field names. Counters (``*_next``) are consumed one per affected
request or message and switch themselves off at zero. ``reset()`` turns everything off.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field, fields
from typing import Any, get_type_hints

import msgspec

WS_KINDS = ("public", "private")


class FaultError(ValueError):
    """A fault setting that cannot be applied (unknown field, wrong type or value)."""


@dataclass
class Faults:
    """Every switch, off by default.

    WebSocket:
      ``ws_drop_after_public`` / ``ws_drop_after_private``: after this many more *data*
      messages (topic pushes, not acks or pongs) on a stream of that kind, the connection that
      sent the last one is dropped (0 = off). Dropping *now* is ``handle.drop_ws()`` or
      ``POST /_emulator/drop``.
      ``ws_drop_mode``: "close" (a clean close frame) or "abort" (the TCP socket just dies).
      ``private_delay_ms``: every private data message waits this long before it is sent.
      ``private_duplicate``: every private data message is sent twice.
      ``private_reorder``: the private messages produced by one venue action (an order's
      order/execution/position/wallet batch) are sent in reverse order.
      ``private_pong_first``: a private-stream pong leaves at once, ahead of the data
      messages still queued (delayed) on that connection. Bybit's gateway answers a ping
      without waiting for messages the matching engine has yet to push, so a pong proves
      nothing about executions still on their way.
      ``malformed_next``: the next N data messages (either stream) are each preceded by two
      malformed frames: one that is not JSON, one of the same topic whose item lacks every
      required field.
    REST:
      ``lose_reply_next``: the next N order writes (create/amend/cancel/cancel-all) are
      applied, then the reply is lost per ``lose_reply_mode``: "close" (connection dropped
      without a response) or "500" (HTTP 500 after applying).
      ``rate_limit_next``: the next N signed requests get retCode 10006, resetting
      ``rate_limit_reset_ms`` in the future.
      ``http_error_next``: the next N REST requests (whose path starts with
      ``http_fault_path``) fail with HTTP ``http_error_status`` *before* doing anything.
      ``timeout_next``: the next N such requests stall ``timeout_s`` seconds before being
      handled (a client with a shorter timeout sees a timeout; the request is then applied).
      ``clock_skew_ms``: added to the server clock (REST ``time``, signature windows, WS auth).
      ``reject_rate``: probability that an order create is rejected (seeded by ``seed``);
      ``reject_mode`` "sync" answers retCode ``reject_code``; "async" acknowledges it and then
      pushes two order messages, orderStatus New then Rejected (rejectReason EC_Others).
    """

    ws_drop_after_public: int = 0
    ws_drop_after_private: int = 0
    ws_drop_mode: str = "close"
    private_delay_ms: int = 0
    private_duplicate: bool = False
    private_reorder: bool = False
    private_pong_first: bool = False
    malformed_next: int = 0
    lose_reply_next: int = 0
    lose_reply_mode: str = "close"
    rate_limit_next: int = 0
    rate_limit_reset_ms: int = 200
    http_error_next: int = 0
    http_error_status: int = 503
    http_fault_path: str = "/v5/"
    timeout_next: int = 0
    timeout_s: float = 2.0
    clock_skew_ms: int = 0
    reject_rate: float = 0.0
    reject_mode: str = "sync"
    reject_code: int = 10001
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply ``changes`` (field -> value), validating names, types and enum values."""
        unknown = sorted(set(changes) - set(_FIELDS))
        if unknown:
            raise FaultError(f"unknown fault field(s) {unknown}; known: {list(_FIELDS)}")
        hints = get_type_hints(Faults)
        checked = Faults(**self.as_dict())
        for name, value in changes.items():
            try:
                setattr(checked, name, msgspec.convert(value, hints[name]))
            except msgspec.ValidationError as exc:
                raise FaultError(f"{name}: {exc}") from None
        _validate(checked)
        for name in changes:
            setattr(self, name, getattr(checked, name))
        if "seed" in changes:
            self._rng = random.Random(self.seed)

    def reset(self) -> None:
        """Turn every fault off (and reseed)."""
        for name, value in Faults().as_dict().items():
            setattr(self, name, value)
        self._rng = random.Random(self.seed)

    def take(self, counter: str) -> bool:
        """Consume one unit of a ``*_next`` counter; True if the fault fires now."""
        left = getattr(self, counter)
        if left <= 0:
            return False
        setattr(self, counter, left - 1)
        return True

    def reject_now(self) -> bool:
        """Draw from the seeded generator: reject this order create?"""
        return self.reject_rate > 0 and self._rng.random() < self.reject_rate

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k in _FIELDS}


_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Faults) if not f.name.startswith("_"))


def _validate(f: Faults) -> None:
    if f.ws_drop_mode not in ("close", "abort"):
        raise FaultError(f"ws_drop_mode must be 'close' or 'abort', not {f.ws_drop_mode!r}")
    if f.lose_reply_mode not in ("close", "500"):
        raise FaultError(f"lose_reply_mode must be 'close' or '500', not {f.lose_reply_mode!r}")
    if f.reject_mode not in ("sync", "async"):
        raise FaultError(f"reject_mode must be 'sync' or 'async', not {f.reject_mode!r}")
    if not 0.0 <= f.reject_rate <= 1.0:
        raise FaultError(f"reject_rate must be within [0, 1], not {f.reject_rate}")
    for name in ("rate_limit_reset_ms", "private_delay_ms", "timeout_s"):
        if getattr(f, name) < 0:
            raise FaultError(f"{name} must be >= 0")
