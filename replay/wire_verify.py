"""``replay verify --wire``: re-run the adapter's conversion over a session's kept bytes.

Reads ``<session>.wire`` (``replay.wire_capture``) in order. Each run (``RunStart``) gets a
fresh ``StreamConverter``; every WebSocket frame goes through ``adapters.bybit.wire``'s
``convert_ws`` and every REST use through ``USES`` -- the very functions the live adapter
called. Checks, in this order of precedence for the first failure:

* what comes out of each frame / use is, event for event, what the log holds at the seqs the
  wire log linked (else the first frame whose events differ is named);
* every converted event was logged or dropped with a reason, except those still queued when
  a run ended (stated);
* every input event of the log (but ``SessionStarted`` / ``SessionStopped`` / ``Halt``)
  has a wire record;
* record numbers of each run are dense (a gap is stated; frames received after a run's last
  commit are not kept, and can only be missing at its end).

Events the adapter or the daemon made without venue bytes (clock offsets, transport
failures, reconciliation corrections, the warm-up back-fill) are kept as made (``local``)
and counted, not re-derived.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import msgspec

from adapters.bybit.convert import StreamConverter
from adapters.bybit.wire import (
    USES,
    WS_SOURCES,
    Drop,
    Frame,
    Link,
    RunStart,
    Use,
    convert_ws,
    decode_record,
    envelope,
    new_converter,
    ws_message,
)
from engine.events import (
    DERIVED_TYPES,
    CandleClosed,
    Event,
    Fill,
    Halt,
    SessionStarted,
    SessionStopped,
    decode,
    encode,
)
from eventstore import EventStore, StreamNotFound
from replay.wire_capture import stream_name

_UNLINKED_OK = (SessionStarted, SessionStopped, Halt)


class WireDivergence(msgspec.Struct):
    run: int
    n: int
    source: str
    recv_ms: int
    reason: str
    expected: Any = None  # what the log holds
    got: Any = None  # what the conversion gives now


class WireResult(msgspec.Struct):
    ok: bool
    runs: int = 0
    frames: dict[str, int] = {}
    bytes: int = 0
    rederived: int = 0
    local: dict[str, int] = {}
    dropped: dict[str, int] = {}
    silent: dict[str, int] = {}  # frames that produced nothing, by why
    unlogged_at_end: int = 0
    gaps: list[str] = []
    live_candles: int = 0
    fills: int = 0
    bytes_per_candle: float = 0.0
    private_bytes_per_fill: float = 0.0
    divergence: WireDivergence | None = None
    missing: str = ""  # no wire log at all


class _Run:
    def __init__(self, run: int) -> None:
        self.run = run
        self.conv: StreamConverter | None = None
        self.numbers: list[int] = []
        self.rest: dict[int, Frame] = {}
        self.converted: list[tuple[int, int, Event]] = []  # (n, index, event)


def _brief(event: Event | None) -> Any:
    if event is None:
        return None
    return {"type": type(event).__name__, **msgspec.to_builtins(msgspec.structs.asdict(event))}


def verify_wire(store: EventStore, session: str) -> WireResult:
    log_stream = store.stream(session)
    try:
        side = store.stream(stream_name(session))
    except StreamNotFound:
        return WireResult(ok=False, missing=f"session {session} has no wire log ({session}.wire)")
    logged: dict[int, bytes] = {seq: bytes(raw) for seq, raw in log_stream.read()}
    records = [decode_record(raw) for _, raw in side.read()]
    size = sum(len(raw) for _, raw in side.read())
    links: dict[tuple[int, int, int], int] = {}
    drops: dict[tuple[int, int, int], str] = {}
    for r in records:
        if isinstance(r, Link):
            links[(r.run, r.n, r.index)] = r.seq
        elif isinstance(r, Drop):
            drops[(r.run, r.n, r.index)] = r.why
    res = WireResult(ok=True, bytes=size)
    frames: Counter[str] = Counter()
    local: Counter[str] = Counter()
    dropped: Counter[str] = Counter(drops.values())
    silent: Counter[str] = Counter()
    runs: dict[int, _Run] = {}
    private_bytes = 0

    def fail(run: int, n: int, source: str, recv: int, why: str, exp: Any, got: Any) -> WireResult:
        res.ok = False
        res.divergence = WireDivergence(run, n, source, recv, why, exp, got)
        return _finish(res, frames, local, dropped, silent)

    for r in records:
        if isinstance(r, (Link, Drop)):
            continue
        run = runs.setdefault(r.run, _Run(r.run))
        if isinstance(r, RunStart):
            run.conv = new_converter(r)
            continue
        run.numbers.append(r.n)
        if isinstance(r, Frame):
            frames[r.source] += 1
            if r.source == "private":
                private_bytes += len(r.body)
            if r.source not in WS_SOURCES:
                run.rest[r.n] = r
                continue
            if run.conv is None:
                silent[r.why or "before the converter"] += 1
                continue
            events, why = convert_ws(run.conv, ws_message(r.body))
            if not events:
                silent[why] += 1
            source, recv = r.source, r.recv_ms
        elif r.how == "local":  # made without venue bytes (may precede the converter)
            events = [decode(raw) for raw in r.extra["events"]]
            local[str(r.extra.get("why", ""))] += len(events)
            source, recv = "use:local", 0
        else:
            if run.conv is None:
                return fail(r.run, r.n, r.how, 0, "a use before its run's start", None, None)
            bodies = [envelope(run.rest[k]) for k in r.frames if k in run.rest]
            if len(bodies) != len(r.frames):
                why = f"use {r.how} reads frames {r.frames}, not all kept"
                return fail(r.run, r.n, r.how, 0, why, None, None)
            events = USES[r.how](run.conv, bodies, r.extra)
            source, recv = f"use:{r.how}", 0
        for i, event in enumerate(events):
            key = (r.run, r.n, i)
            seq = links.get(key)
            if seq is None:
                if key not in drops:
                    run.converted.append((r.n, i, event))
                continue
            raw = logged.get(seq)
            if raw is None or raw != encode(event):
                got = _brief(event)
                exp = _brief(decode(raw)) if raw is not None else None
                why = f"event {i} differs from the log at seq {seq}"
                return fail(r.run, r.n, source, recv, why, exp, got)
            if not (isinstance(r, Use) and r.how == "local"):
                res.rederived += 1
    linked = set(links.values())
    for seq, raw in logged.items():
        event = decode(raw)
        if type(event) in DERIVED_TYPES or isinstance(event, _UNLINKED_OK) or seq in linked:
            continue
        why = f"seq {seq} ({type(event).__name__}) is in the log but has no wire record"
        return fail(0, 0, "log", 0, why, _brief(event), None)
    stopped = _clean_runs(records, logged)
    for run in runs.values():
        nums = run.numbers
        expected = list(range(1, len(nums) + 1))
        if nums != expected:
            missing = sorted(set(range(1, max(nums, default=0) + 1)) - set(nums))
            res.gaps.append(f"run {run.run}: records {missing[:5]} missing")
        last_linked = max((k[1] for k in links if k[0] == run.run), default=0)
        for n, i, event in run.converted:
            if run.run in stopped and n < last_linked:
                why = f"event {i} ({type(event).__name__}) was neither logged nor dropped"
                return fail(run.run, n, "", 0, why, None, _brief(event))
            res.unlogged_at_end += 1
    if res.gaps:
        res.ok = False
    res.runs = len(runs)
    events = [decode(raw) for raw in logged.values()]
    res.live_candles = sum(isinstance(e, CandleClosed) and not e.backfill for e in events)
    res.fills = sum(isinstance(e, Fill) for e in events)
    res.bytes_per_candle = round(size / res.live_candles, 1) if res.live_candles else 0.0
    res.private_bytes_per_fill = round(private_bytes / res.fills, 1) if res.fills else 0.0
    return _finish(res, frames, local, dropped, silent)


def _clean_runs(records: list[Any], logged: dict[int, bytes]) -> set[int]:
    """Runs whose last linked event is followed in the log by a ``SessionStopped``."""
    last: dict[int, int] = {}
    for r in records:
        if isinstance(r, Link):
            last[r.run] = max(last.get(r.run, 0), r.seq)
    stops = [s for s, raw in logged.items() if isinstance(decode(raw), SessionStopped)]
    out: set[int] = set()
    ordered = sorted(last.items(), key=lambda kv: kv[1])
    for k, (run, seq) in enumerate(ordered):
        nxt = ordered[k + 1][1] if k + 1 < len(ordered) else 1 << 62
        if any(seq < s < nxt for s in stops):
            out.add(run)
    return out


def _finish(
    res: WireResult,
    frames: Counter[str],
    local: Counter[str],
    dropped: Counter[str],
    silent: Counter[str],
) -> WireResult:
    res.frames, res.local = dict(frames), dict(local)
    res.dropped, res.silent = dict(dropped), dict(silent)
    return res


def describe(session: str, res: WireResult) -> list[str]:
    """The human lines of ``replay verify --wire``."""
    if res.missing:
        return [f"NO WIRE LOG {session}: {res.missing}"]
    frames = ", ".join(f"{v} {k}" for k, v in sorted(res.frames.items()))
    lines = [
        f"{'OK' if res.ok else 'WIRE DIVERGED'} {session} (wire): {res.runs} run(s), "
        f"frames {frames}; {res.bytes} bytes kept",
        f"  re-derived from venue bytes: {res.rederived} events; kept as made (no venue "
        f"bytes): {sum(res.local.values())} ({_counts(res.local)})",
        f"  dropped by the daemon: {_counts(res.dropped) or 'none'}; frames with no event: "
        f"{_counts(res.silent) or 'none'}",
        f"  {res.bytes_per_candle} wire bytes per live candle ({res.live_candles}), "
        f"{res.private_bytes_per_fill} private-stream bytes per fill ({res.fills})",
    ]
    if res.unlogged_at_end:
        lines.append(
            f"  {res.unlogged_at_end} converted event(s) still queued when a run ended "
            "(not logged; the restart's reconciliation fetches them again)"
        )
    lines.append(
        "  gaps: "
        + (
            "; ".join(res.gaps)
            if res.gaps
            else "none (frames after a run's last commit are not kept)"
        )
    )
    d = res.divergence
    if d is not None:
        where = f"run {d.run} record #{d.n} ({d.source}, received {d.recv_ms})" if d.n else "log"
        lines.append(f"  first difference at {where}: {d.reason}")
        if d.expected is not None:
            lines.append(f"    logged:    {json.dumps(d.expected, default=str)}")
        if d.got is not None:
            lines.append(f"    converted: {json.dumps(d.got, default=str)}")
    return lines


def _counts(c: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in sorted(c.items(), key=lambda kv: -kv[1]))
