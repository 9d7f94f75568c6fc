"""Event log benchmark: batched append, durable append, read + decode of candle events.

Prints one JSON object per line: ``{"bench": NAME, "per_s": N, "events": N, "seconds": S, ...}``.
Run: ``.venv/bin/python tools/bench_eventstore.py [--events N] [--durable N] [--dir DIR]``.
The store lives in a temporary directory (on the same disk as /tmp) and is deleted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from engine.events import CandleClosed, decode, encode
from eventstore import EventStore

MINUTE_MS = 60_000


def candles(n: int) -> list[CandleClosed]:
    """``n`` one-minute BTCUSDT candles with plausible tick/lot values (not timed)."""
    start = 1_743_638_400_000  # 2025-04-03T00:00Z
    out = []
    price = 817_948
    for i in range(n):
        close_ms = start + (i + 1) * MINUTE_MS
        move = (i * 7919) % 41 - 20
        open_, close = price, price + move
        out.append(
            CandleClosed(
                ts=close_ms,
                symbol="BTCUSDT",
                timeframe="1m",
                open_ms=close_ms - MINUTE_MS,
                close_ms=close_ms,
                open=open_,
                high=max(open_, close) + 7,
                low=min(open_, close) - 5,
                close=close,
                volume=12_345 + i % 1000,
                turnover=1_009_876_543_210 + i,
            )
        )
        price = close
    return out


def emit(bench: str, events: int, seconds: float, cpu_s: float, **extra: Any) -> None:
    """One JSON line. ``cpu_s`` (this process's CPU time) shows how much of ``seconds``
    was our own work when the machine is shared; ``per_s`` is always wall-clock."""
    row: dict[str, Any] = {"bench": bench, "per_s": round(events / seconds), "events": events}
    row["seconds"] = round(seconds, 4)
    row["cpu_s"] = round(cpu_s, 4)
    row.update(extra)
    print(json.dumps(row), flush=True)


def timed(fn: Callable[[], int]) -> tuple[int, float, float]:
    """Run ``fn``; return its event count, wall seconds and this process's CPU seconds."""
    c0, t0 = time.process_time(), time.perf_counter()
    n = fn()
    return n, time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--durable", type=int, default=2_000)
    parser.add_argument("--dir", type=Path, default=None, help="parent of the temporary store")
    args = parser.parse_args()
    events = candles(args.events)

    with (
        tempfile.TemporaryDirectory(prefix="bench-eventstore-", dir=args.dir) as tmp,
        EventStore(tmp) as store,
    ):
        # Batched append, one event per call, as a backtest runner appends.
        stream = store.create_stream("batched", "backtest")

        def append_each() -> int:
            with stream.writer(durable=False) as w:
                append = w.append
                for event in events:
                    append(encode(event))
            return len(events)

        n, s, c = timed(append_each)
        emit("eventstore_append_batched", n, s, c)

        # Batched append_many: the runner hands over a list per step.
        stream_many = store.create_stream("batched_many", "backtest")

        def append_many() -> int:
            chunk = 16_384
            with stream_many.writer(durable=False) as w:
                for i in range(0, len(events), chunk):
                    w.append_many([encode(e) for e in events[i : i + chunk]])
            return len(events)

        n, s, c = timed(append_many)
        emit("eventstore_append_many_batched", n, s, c)
        if stream.fingerprint != stream_many.fingerprint:
            raise SystemExit("the two batched streams differ: the chain depends on batching")

        # Read + decode with the module-level decoder.
        def read_decode() -> int:
            count = 0
            for _, data in stream.read():
                decode(data)
                count += 1
            return count

        n, s, c = timed(read_decode)
        emit("eventstore_read_decode", n, s, c)

        # Read + decode with a decoder typed for the one event type (upper bound).
        candle_decode = msgspec.msgpack.Decoder(CandleClosed).decode

        def read_decode_typed() -> int:
            count = 0
            for _, data in stream.read():
                candle_decode(data)
                count += 1
            return count

        n, s, c = timed(read_decode_typed)
        emit("eventstore_read_decode_candle_only", n, s, c)

        def verify() -> int:
            stream.verify_chain()
            return stream.last_seq

        n, s, c = timed(verify)
        emit("eventstore_verify_chain", n, s, c)

        # Durable: every append committed and fsynced before it returns.
        durable = store.create_stream("durable", "live")
        latencies = []
        with durable.writer(durable=True) as w:
            c0, t0 = time.process_time(), time.perf_counter()
            for event in events[: args.durable]:
                t = time.perf_counter()
                w.append(encode(event))
                latencies.append(time.perf_counter() - t)
            total, cpu = time.perf_counter() - t0, time.process_time() - c0
        latencies.sort()
        emit(
            "eventstore_append_durable",
            len(latencies),
            total,
            cpu,
            p50_ms=round(statistics.median(latencies) * 1000, 3),
            p99_ms=round(latencies[int(len(latencies) * 0.99)] * 1000, 3),
        )


if __name__ == "__main__":
    main()
