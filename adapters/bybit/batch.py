"""Independent order commands of one fold in one request: ``/v5/order/create-batch``,
``amend-batch`` and ``cancel-batch`` (REST, or ``order.*-batch`` over the Trade API).

Bybit takes at most ``BATCH_MAX`` orders a request (linear) and answers item by item: the
result's ``list`` row and ``retExtInfo.list`` code of item ``i`` belong to the ``i``-th order.
Each item is answered as its single form would be: code 0 -> accepted (a create's
``OrderAccepted`` from its row), a refusal -> ``OrderRejected`` / ``CommandRejected`` with the
item's code. The idempotency is the single form's: the commands are in the log before the
batch is sent, and an item whose answer is unclear -- the whole reply lost, an item answered
110072 (duplicate orderLinkId) or "busy" -- goes through its single form with ``maybe_sent``,
which looks the orderLinkId up before any resend. A request refused whole placed nothing; its
commands then go one by one. One command alone, and an armed TP/SL (moved on the position,
``/v5/position/trading-stop``), always go singly.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar

from adapters.bybit.errors import ApiError, BybitError, RetriesExhausted, TransportError
from adapters.bybit.retry import DUPLICATE_LINK_ID, Action, classify
from engine.events import AmendOrder, CancelOrder, SubmitOrder
from engine.orders import armed_purpose

if TYPE_CHECKING:
    from adapters.bybit.venue import BybitVenue

log = logging.getLogger(__name__)

BATCH_MAX: Final = 20  # orders per batch request, linear (Bybit's "Batch Place Order")
C = TypeVar("C", SubmitOrder, AmendOrder, CancelOrder)


def chunks(items: Sequence[C], size: int = BATCH_MAX) -> list[list[C]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def item_code(result: dict[str, Any], i: int) -> tuple[int, str] | None:
    """Item ``i``'s (code, msg) from a batch result, or None when the reply lacks it."""
    codes = (result.get("retExtInfo") or {}).get("list") or []
    if i >= len(codes) or not isinstance(codes[i], dict):
        return None
    try:
        return int(codes[i].get("code", -1)), str(codes[i].get("msg", ""))
    except (TypeError, ValueError):
        return None


def envelope(result: dict[str, Any]) -> dict[str, Any]:
    """A batch result in the envelope the wire log keeps (and ``USES`` read)."""
    rows = {"list": result.get("list") or []}
    return {"retCode": 0, "result": rows, "retExtInfo": result.get("retExtInfo") or {}}


Answer = Callable[[int, C, dict[str, Any], list[int]], None]
Single = Callable[[C, bool], Awaitable[None]]


async def send(
    venue: BybitVenue,
    name: str,
    cmds: Sequence[C],
    params_of: Callable[[C], dict[str, Any]],
    answer: Answer[C],
    single: Single[C],
) -> None:
    """Send ``cmds`` (two to ``BATCH_MAX``) as one ``name``-batch request.

    ``answer(i, cmd, envelope, frames)`` gets each item the venue answered, in request order;
    then each item it did not answer clearly goes through ``single(cmd, maybe_sent)``."""
    path = f"/v5/order/{name}-batch"
    request = [{k: v for k, v in params_of(c).items() if k != "category"} for c in cmds]
    try:
        with venue.tap.collect() as got:
            result = await venue._write(
                path, {"category": venue.config.category, "request": request}
            )
    except (ApiError, RetriesExhausted, TransportError) as exc:
        await _failed_whole(venue, name, cmds, exc, single)
        return
    body = envelope(result)
    later: list[tuple[C, bool]] = []
    for i, cmd in enumerate(cmds):
        code = item_code(result, i)
        if code is None or code[0] == DUPLICATE_LINK_ID or _unclear(code[0]):
            log.warning("%s: %s-batch item answered %s; looking it up", cmd.client_id, name, code)
            later.append((cmd, True))
        elif _safe_to_resend(code[0]):  # refused before anything happened (rate, clock)
            later.append((cmd, False))
        else:
            answer(i, cmd, body, got)
    for cmd, maybe_sent in later:
        await single(cmd, maybe_sent)


async def _failed_whole(
    venue: BybitVenue, name: str, cmds: Sequence[C], exc: BybitError, single: Single[C]
) -> None:
    """A batch request without per-item answers: lost -> each looked up; refused -> each
    sent alone (nothing was placed); not sendable -> each rejected as its single form."""
    action = classify(exc.last if isinstance(exc, RetriesExhausted) else exc)
    lost = isinstance(exc, TransportError) and action is not Action.FATAL
    if lost or (isinstance(exc, ApiError) and action is Action.AMBIGUOUS):
        log.warning("%s-batch reply lost (%s); looking its %d orders up", name, exc, len(cmds))
        for cmd in cmds:
            await single(cmd, True)
        return
    if isinstance(exc, ApiError):
        log.warning("%s-batch refused whole (%s); sending its orders one by one", name, exc)
        for cmd in cmds:
            await single(cmd, False)
        return
    for cmd in cmds:  # retries used up, or an HTTP refusal: as the single form says
        if isinstance(cmd, SubmitOrder):
            venue._unsent(cmd, exc)
        else:
            venue._not_confirmed(name, cmd.client_id, exc)


def _unclear(code: int) -> bool:
    return classify(ApiError("", code, "")) is Action.AMBIGUOUS


def _safe_to_resend(code: int) -> bool:
    return classify(ApiError("", code, "")) in (Action.RATE_LIMITED, Action.CLOCK)


def _created(venue: BybitVenue) -> Answer[SubmitOrder]:
    def answer(i: int, cmd: SubmitOrder, body: dict[str, Any], got: list[int]) -> None:
        code = item_code(body, i) or (0, "")
        now = venue.clock.now_ms()
        if code[0] == 0:
            extra = {**venue._create_params(cmd)[1], "ts": now, "item": i}
            venue._emit_all(venue._use("ack_submit", got, extra, [body]))
        else:
            extra = {"client_id": cmd.client_id, "ts": now, "item": i}
            venue._emit_all(venue._use("reject", got, extra, [body]))

    return answer


def _commanded(venue: BybitVenue, name: str) -> Answer[Any]:
    def answer(i: int, cmd: AmendOrder | CancelOrder, body: dict[str, Any], got: list[int]) -> None:
        code = item_code(body, i) or (0, "")
        if code[0] != 0:
            now = venue.clock.now_ms()
            extra = {"client_id": cmd.client_id, "ts": now, "command": name, "item": i}
            venue._emit_all(venue._use("command_rejected", got, extra, [body]))
        elif isinstance(cmd, AmendOrder):
            venue._amended(cmd)  # a cancel's end comes from the order stream

    return answer


async def submit_batch(venue: BybitVenue, cmds: Sequence[SubmitOrder]) -> None:
    """Create ``cmds`` (independent orders) in batches; see the module doc."""

    async def single(cmd: SubmitOrder, maybe_sent: bool) -> None:
        await venue.submit(cmd, maybe_sent=maybe_sent)

    for chunk in chunks(cmds):
        if len(chunk) == 1:
            await venue.submit(chunk[0])
            continue
        for cmd in chunk:
            venue.submissions[cmd.client_id] = venue.submissions.get(cmd.client_id, 0) + 1
        params_of = lambda c: venue._create_params(c)[0]  # noqa: E731
        await send(venue, "create", chunk, params_of, _created(venue), single)


async def amend_batch(venue: BybitVenue, cmds: Sequence[AmendOrder]) -> None:
    """Amend ``cmds`` in batches (armed TP/SL levels one by one); see the module doc."""

    async def one(cmd: AmendOrder, maybe_sent: bool = False) -> None:
        await venue.amend(cmd, maybe_sent=maybe_sent)

    await _by_kind(venue, "amend", cmds, one, venue._amend_params)


async def cancel_batch(venue: BybitVenue, cmds: Sequence[CancelOrder]) -> None:
    """Cancel ``cmds`` in batches (armed TP/SL levels one by one); see the module doc."""

    async def one(cmd: CancelOrder, maybe_sent: bool = False) -> None:
        await venue.cancel(cmd, maybe_sent=maybe_sent)

    await _by_kind(venue, "cancel", cmds, one, venue._cancel_params)


async def _by_kind(
    venue: BybitVenue,
    kind: str,
    cmds: Sequence[Any],
    one: Callable[..., Awaitable[None]],
    params_of: Callable[[Any], dict[str, Any]],
) -> None:
    """Armed TP/SL levels one by one (they move on the position), the rest in batches."""
    for cmd in [c for c in cmds if armed_purpose(c.client_id)]:
        await one(cmd)
    for chunk in chunks([c for c in cmds if not armed_purpose(c.client_id)]):
        if len(chunk) == 1:
            await one(chunk[0])
        else:
            await send(venue, kind, chunk, params_of, _commanded(venue, kind), one)
