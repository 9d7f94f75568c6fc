"""Every byte the venue sent, kept beside the session, and the one conversion that reads it.

The adapter turns venue bytes into engine events in two ways, both here so the live path and
the offline check (``replay verify --wire``) run the same code:

* a WebSocket frame (``public`` / ``private``): decoded, and a data message (one with a
  ``topic``) goes through ``StreamConverter.handle``;
* a REST response body: converted by a named *use* (``USES``), with the inputs that are not
  venue bytes (the command's client id, the time it was answered, ...) recorded in the use.

``WireTap`` records, in arrival order, ``RunStart`` (a converter was made: one per daemon
run), ``Frame`` (bytes as received, with the exchange-clock receive time and, when it produced
nothing, why: control message, not JSON, ignored topic, duplicate, ...), ``Use`` (a conversion
of REST frames, or events the adapter or daemon made without venue bytes: ``local``), and, as
the daemon logs or drops each produced event, ``Link`` (event -> its seq in the session log)
or ``Drop`` (why the daemon did not log it). Records are numbered per run (``n``, from 1)
and handed to the daemon in order, so what is committed is always a prefix of the run.

Never recorded: anything sent (auth requests, signatures, keys are outgoing) and the
private stream's auth reply. REST bodies are pybit's decoded JSON re-encoded (pybit does not
expose the raw bytes); an error reply is kept as ``{"retCode", "retMsg"}``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final

import msgspec

from adapters.bybit.convert import StreamConverter, candles_from_rest_kline
from engine.events import (
    CommandRejected,
    Event,
    EventBase,
    InstrumentSpec,
    OrderRejected,
    decode,
    encode,
)
from engine.instrument import Instrument

WS_SOURCES: Final = ("public", "private")


class RunStart(msgspec.Struct, tag="run"):
    run: int
    ts: int
    spec: InstrumentSpec
    dedupe: int


class Frame(msgspec.Struct, tag="frame"):
    run: int
    n: int
    source: str  # public | private | rest | rest-error | trade
    recv_ms: int
    body: bytes
    path: str = ""
    request: bytes = b""  # a REST request's parameters (never a key or a signature)
    why: str = ""  # why it produced no event ("" when it did, or when it is a REST read)


class Use(msgspec.Struct, tag="use"):
    run: int
    n: int
    how: str
    frames: list[int]
    extra: dict[str, Any]


class Link(msgspec.Struct, tag="link"):
    run: int
    n: int
    index: int
    seq: int


class Drop(msgspec.Struct, tag="drop"):
    run: int
    n: int
    index: int
    why: str


Record = RunStart | Frame | Use | Link | Drop
_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder(Record)


def encode_record(record: Record) -> bytes:
    return _encoder.encode(record)


def decode_record(data: bytes | memoryview) -> Record:
    return _decoder.decode(data)


# ---------------------------------------------------------------- the conversion


def ws_message(raw: str | bytes) -> dict[str, Any] | None:
    """A WebSocket frame as a JSON object, or None (not JSON, not an object)."""
    try:
        msg = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return msg if isinstance(msg, dict) else None


def convert_ws(conv: StreamConverter, msg: dict[str, Any] | None) -> tuple[list[Event], str]:
    """One decoded frame -> (events, why none)."""
    if msg is None:
        return [], "not a JSON object"
    if "topic" not in msg:
        return [], f"control message ({msg.get('op') or msg.get('ret_msg') or '?'})"
    skipped, dups = conv.skipped, conv.duplicates
    events = conv.handle(msg)
    if events:
        return events, ""
    if conv.skipped > skipped:
        return [], "malformed item"
    if conv.duplicates > dups:
        return [], "duplicate execution"
    return [], f"nothing new ({str(msg.get('topic')).split('.', 1)[0]})"


def _item(body: dict[str, Any], x: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A batch reply's item ``x["item"]``: (its result row, its {"code", "msg"})."""
    i = int(x["item"])
    rows = (body.get("result") or {}).get("list") or []
    codes = (body.get("retExtInfo") or {}).get("list") or []
    row = rows[i] if i < len(rows) and isinstance(rows[i], dict) else {}
    code = codes[i] if i < len(codes) and isinstance(codes[i], dict) else {}
    return row, code


def _verdict(body: dict[str, Any], x: dict[str, Any]) -> tuple[int, str]:
    """A refusal's (retCode, retMsg): the reply's, or a batch item's."""
    if "item" in x:
        code = _item(body, x)[1]
        return int(code.get("code", 0)), str(code.get("msg", ""))
    return int(body.get("retCode", 0)), str(body.get("retMsg", ""))


def _row(body: dict[str, Any], client_id: str) -> dict[str, Any] | None:
    for row in (body.get("result") or {}).get("list") or []:
        if isinstance(row, dict) and row.get("orderLinkId") == client_id:
            return row
    return None


def _ack_submit(
    conv: StreamConverter, bodies: list[dict[str, Any]], x: dict[str, Any]
) -> list[Event]:
    args = (x["conditional"], x["ts"], x["qty"], x["price"], x["trigger"])
    if not x.get("lookup"):
        result = _item(bodies[-1], x)[0] if "item" in x else bodies[-1].get("result") or {}
        return conv.ack_submit(x["client_id"], str(result.get("orderId", "")), *args)
    row = _row(bodies[-1], x["client_id"])
    if row is None:
        return []
    out = conv.ack_submit(x["client_id"], str(row.get("orderId", "")), *args)
    return out + conv.order(row)


def _reject(conv: StreamConverter, bodies: list[dict[str, Any]], x: dict[str, Any]) -> list[Event]:
    code, msg = _verdict(bodies[-1], x)
    return [OrderRejected(ts=x["ts"], client_id=x["client_id"], reason=msg, code=code)]


def _command_rejected(
    conv: StreamConverter, bodies: list[dict[str, Any]], x: dict[str, Any]
) -> list[Event]:
    code, msg = _verdict(bodies[-1], x)
    return [
        CommandRejected(
            ts=x["ts"], client_id=x["client_id"], command=x["command"], reason=msg, code=code
        )
    ]


def _ack_amend(
    conv: StreamConverter, bodies: list[dict[str, Any]], x: dict[str, Any]
) -> list[Event]:
    return conv.ack_amend(x["client_id"], x["ts"], x["qty"], x["price"], x["trigger"])


def _order_row(
    conv: StreamConverter, bodies: list[dict[str, Any]], x: dict[str, Any]
) -> list[Event]:
    row = _row(bodies[-1], x["client_id"])
    return [] if row is None else conv.order(row)


def _executions(
    conv: StreamConverter, bodies: list[dict[str, Any]], x: dict[str, Any]
) -> list[Event]:
    rows = [
        r
        for body in bodies
        for r in (body.get("result") or {}).get("list") or []
        if isinstance(r, dict)
    ]
    rows.sort(key=lambda r: (int(r.get("execTime") or 0), str(r.get("execId", ""))))
    out: list[Event] = []
    for row in rows:
        out.extend(conv.execution(row))
    return out


def _backfill(
    conv: StreamConverter, bodies: list[dict[str, Any]], x: dict[str, Any]
) -> list[Event]:
    inst = next(iter(conv.instruments.values()))
    result = dict(bodies[-1].get("result") or {})
    result.setdefault("interval", x["interval"])
    closed = [cd for cd in candles_from_rest_kline(inst, result) if cd.close_ms <= x["now"]]
    return conv.backfill(closed)


def _seen_candle(
    conv: StreamConverter, bodies: list[dict[str, Any]], x: dict[str, Any]
) -> list[Event]:
    conv.seen_candle(x["symbol"], x["timeframe"], x["open_ms"])
    return []


def _release_held(
    conv: StreamConverter, bodies: list[dict[str, Any]], x: dict[str, Any]
) -> list[Event]:
    return conv.release_held()


def _local(conv: StreamConverter, bodies: list[dict[str, Any]], x: dict[str, Any]) -> list[Event]:
    return [decode(raw) for raw in x["events"]]


#: Each use reads the LAST of its frames (earlier ones are retried failures), but
#: ``executions``, which reads every page.
UseFn = Callable[[StreamConverter, list[dict[str, Any]], dict[str, Any]], list[Event]]
#: how -> conversion of the use's REST bodies (envelopes) with its extra inputs.
USES: Final[dict[str, UseFn]] = {
    "ack_submit": _ack_submit,
    "reject": _reject,
    "command_rejected": _command_rejected,
    "ack_amend": _ack_amend,
    "order_row": _order_row,
    "executions": _executions,
    "backfill": _backfill,
    "seen_candle": _seen_candle,
    "release_held": _release_held,
    "local": _local,  # made without venue bytes: kept as made, not re-derived
}


def envelope(frame: Frame) -> dict[str, Any]:
    """A kept REST body or Trade API reply as the REST envelope ``USES`` read."""
    body: dict[str, Any] = json.loads(frame.body)
    if frame.source == "trade":
        body = {**body, "result": body.get("data") or {}}
    return body


def new_converter(start: RunStart) -> StreamConverter:
    inst = Instrument(start.spec)
    return StreamConverter({start.spec.symbol: inst}, start.dedupe)


# ---------------------------------------------------------------------- the tap

_COLLECT: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "wire_collect", default=None
)


class WireTap:
    """Records what the adapter received and what it made of it (see the module doc).

    A disabled tap (``WireTap(enabled=False)``) records nothing and costs a branch.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.run = time.time_ns() // 1000  # unique per daemon run, increasing
        self.current = 0  # the WS frame being dispatched now
        self._n = 0
        self._pending: list[Record] = []
        self._frames: dict[int, Frame] = {}  # WS frames whose ``why`` may still be set
        self._tags: dict[int, tuple[EventBase, int, int]] = {}
        self.bytes_kept = 0

    # -- recording -----------------------------------------------------------

    def start_run(self, ts: int, spec: InstrumentSpec, dedupe: int) -> None:
        if self.enabled:
            self._pending.append(RunStart(self.run, ts, spec, dedupe))

    def _next(self) -> int:
        self._n += 1
        return self._n

    def ws_frame(self, source: str, raw: str | bytes, recv_ms: int, decoded: bool = True) -> int:
        """A received WebSocket frame (never an auth reply: the caller skips those)."""
        if not self.enabled:
            return 0
        body = raw.encode() if isinstance(raw, str) else bytes(raw)
        n = self.current = self._next()
        why = "control message" if decoded else "not a JSON object"
        frame = Frame(self.run, n, source, recv_ms, body, why=why)
        self._pending.append(frame)
        self._frames = {n: frame}
        return n

    def rest_frame(
        self, path: str, params: dict[str, Any] | None, body: dict[str, Any], recv_ms: int, ok: bool
    ) -> int:
        """A REST response body (or error envelope) for ``path`` called with ``params``."""
        if not self.enabled:
            return 0
        n = self._next()
        request = msgspec.json.encode(params or {})
        raw = msgspec.json.encode(body)
        self._pending.append(
            Frame(self.run, n, "rest" if ok else "rest-error", recv_ms, raw, path, request)
        )
        got = _COLLECT.get()
        if got is not None:
            got.append(n)
        return n

    def trade_frame(self, path: str, params: dict[str, Any], raw: str, recv_ms: int) -> int:
        """A Trade API reply, as received (its ``data`` is what a REST ``result`` is)."""
        if not self.enabled:
            return 0
        n = self._next()
        request = msgspec.json.encode(params)
        self._pending.append(Frame(self.run, n, "trade", recv_ms, raw.encode(), path, request))
        got = _COLLECT.get()
        if got is not None:
            got.append(n)
        return n

    @contextlib.contextmanager
    def collect(self) -> Iterator[list[int]]:
        """The numbers of the REST frames recorded by this task inside the block."""
        got: list[int] = []
        token = _COLLECT.set(got)
        try:
            yield got
        finally:
            _COLLECT.reset(token)

    def produced(self, n: int, events: list[Event], why: str) -> None:
        """What WS frame ``n`` became (``why`` when nothing)."""
        if not self.enabled or n == 0:
            return
        frame = self._frames.get(n)
        if frame is not None:
            frame.why = why
        self._tag(n, events)

    def use(
        self, how: str, frames: list[int], extra: dict[str, Any], events: Sequence[EventBase]
    ) -> None:
        """A conversion of REST ``frames`` (or, ``local``, events made without bytes)."""
        if not self.enabled:
            return
        n = self._next()
        self._pending.append(Use(self.run, n, how, list(frames), extra))
        self._tag(n, events)

    def local(self, events: Sequence[EventBase], why: str) -> None:
        if self.enabled and events:
            self.use("local", [], {"events": [encode(e) for e in events], "why": why}, events)

    def _tag(self, n: int, events: Sequence[EventBase]) -> None:
        for i, event in enumerate(events):
            self._tags[id(event)] = (event, n, i)

    def dropped(self, event: EventBase, why: str) -> None:
        """The daemon did not log ``event`` (e.g. a transport duplicate)."""
        tag = self._tags.pop(id(event), None)
        if tag is not None and tag[0] is event:
            self._pending.append(Drop(self.run, tag[1], tag[2], why))

    # -- handing over --------------------------------------------------------

    def take(self, events: list[EventBase], seqs: range) -> list[bytes]:
        """Everything pending, then a ``Link`` for each of ``events`` the adapter made
        (they are logged at ``seqs`` in the commit these records join)."""
        if not self.enabled:
            return []
        out = self._pending
        for event, seq in zip(events, seqs, strict=True):
            tag = self._tags.pop(id(event), None)
            if tag is not None and tag[0] is event:
                out.append(Link(self.run, tag[1], tag[2], seq))
        self._pending = []
        raw = [encode_record(r) for r in out]
        self.bytes_kept += sum(map(len, raw))
        return raw

    def pending(self) -> int:
        return len(self._pending)
