"""Benchmark the live daemon: candle-close to order-on-the-wire latency, and restart time.

1. Latency, as the venue sees it: the emulator (in this process) records when each
   closing kline left and when each order-create request arrived; `replay demo` runs
   as a real subprocess with durable log commits, on a fast moving-average card over
   real 5-minute candles, stepped in lockstep. Compared with the fsync cost of one
   durable append to a store on the same disk.
2. Restart: a session log of ~1,000,000 events (the backtest runner writes it), then
   the daemon's resume (fold the log into engine state and reconciliation view) timed
   without and with a snapshot.
3. Restart to running of the real process against the emulator, after a SIGKILL.

Latency is measured twice, orders over REST and over the WebSocket Trade API (``--trade-api``),
both with the wire capture on (its bytes per candle and per fill are printed too), and a
table line puts the two side by side.

Prints JSON lines. Usage: python tools/bench_daemon.py [--candles 300] [--events 1000000]
[--latency-only]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.historical import generate  # noqa: E402
from engine.events import SubmitOrder, encode  # noqa: E402
from engine.instrument import BTCUSDT, MONEY_SCALE, Instrument  # noqa: E402
from eventstore import EventStore  # noqa: E402
from replay.cards import load_card  # noqa: E402
from replay.daemon import Daemon, DaemonOptions  # noqa: E402
from replay.latency_trace import PREFIX  # noqa: E402
from replay.session import run_backtest  # noqa: E402
from replay.wire_verify import verify_wire  # noqa: E402
from tools.bybit_emulator import EmulatorConfig, EmulatorHandle, load_candle_file  # noqa: E402
from tools.daemon_driver import DaemonProcess  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "crypto" / "bybit_linear_BTCUSDT_5m_20250403_20250702.csv"
HISTORY = 100


def card(folder: Path, timeframe: str, fast: int, slow: int) -> Path:
    path = folder / f"ma_{timeframe}_{fast}_{slow}.yaml"
    path.write_text(
        f"name: bench\nsymbol: BTCUSDT\ntimeframes: {{execution: {timeframe}}}\n"
        f"features:\n  fast: {{indicator: sma, period: {fast}}}\n"
        f"  slow: {{indicator: sma, period: {slow}}}\n"
        "blocks:\n"
        "  - {name: up, when: {cross_above: [fast, slow]}, then: {enter_long: {equity_pct: 50}}}\n"
        "  - {name: dn, when: {cross_below: [fast, slow]}, then: {enter_short: {equity_pct: 50}}}\n"
        "risk: {allow_flip: true, max_leverage: 3}\n"
    )
    return path


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def fsync_ms(folder: Path, n: int = 300, pause_s: float = 0.0) -> float:
    """p50 of one durable append (commit + fsync) of a small event, on this disk; with
    ``pause_s``, each after that long idle, as a live candle's commit is (an idle disk
    and CPU make it about twice the back-to-back figure)."""
    times = []
    with (
        EventStore(folder / f"fsync-{pause_s}") as store,
        store.create_stream("f", "bench").writer(durable=True) as writer,
    ):
        payload = encode(SubmitOrder(0, "x", "BTCUSDT", "Buy", "Market", 1))
        for _ in range(n):
            time.sleep(pause_s)
            t0 = time.perf_counter()
            writer.append(payload)
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def latency(folder: Path, candles: int, transport: str = "rest") -> dict[str, object]:
    """Candle close to order at the venue, orders over ``transport`` (rest | trade_api)."""
    bars = load_candle_file(DATA, Instrument(BTCUSDT))[: HISTORY + candles + 5]
    extra = ["--trade-api"] if transport == "trade_api" else []
    store = folder / f"live-{transport}"
    with EmulatorHandle.start(bars, EmulatorConfig(history=HISTORY)) as emulator:
        daemon = DaemonProcess(
            emulator,
            card(folder, "5m", 2, 5),
            store,
            "bench",
            "--warmup",
            str(HISTORY),
            *extra,
            env={"REPLAY_TRACE": "1"},
        )
        try:
            daemon.wait_warm(HISTORY)
            # Live candles are minutes apart; a faster replay would measure the adapter's
            # rate limiter (10 order writes per second), not the daemon.
            # The driver reads the log only once the candle's orders are out: it shares the
            # emulator's interpreter lock, which Bybit's servers do not.
            daemon.play(candles, pace_s=0.2, quiet_s=0.05)
            daemon.stop()
        finally:
            daemon.kill()
        wire = emulator.emulator.wire
        # this run's lines only (both transports' runs append to one file)
        stderr = daemon.stderr_path.read_bytes()[daemon.stderr_offset :].decode(errors="replace")
        samples: list[float] = []
        firsts: dict[int, float] = {}  # the first order a candle caused
        for event in daemon.events:
            if isinstance(event, SubmitOrder) and event.client_id in wire.order_arrived:
                sent = wire.kline_closed.get(event.ts)
                if sent is not None:
                    ms = (wire.order_arrived[event.client_id] - sent) * 1000
                    samples.append(ms)
                    firsts.setdefault(event.ts, ms)
    base = fsync_ms(folder / transport)
    idle = fsync_ms(folder / transport, n=60, pause_s=0.2)  # the candle pace of play()
    with EventStore(store, readonly=True) as es:
        wired = verify_wire(es, "bench")
    row: dict[str, object] = {
        "bench": "candle_close_to_order_on_wire_ms",
        "transport": transport,
        "orders": len(samples),
        "p50": round(statistics.median(samples), 3),
        "p99": round(pct(samples, 0.99), 3),
        "max": round(max(samples), 3),
        "fsync_p50": round(base, 3),
        "p50_minus_fsync": round(statistics.median(samples) - base, 3),
        "fsync_after_idle_p50": round(idle, 3),
        "first_order_p50": round(statistics.median(firsts.values()), 3),
        "first_order_p99": round(pct(list(firsts.values()), 0.99), 3),
        "wire_ok": wired.ok,
        "wire_bytes_per_candle": wired.bytes_per_candle,
        "wire_private_bytes_per_fill": wired.private_bytes_per_fill,
    }
    print(json.dumps(row), flush=True)
    print(json.dumps(stages(transport, stderr, wire.kline_closed, wire.order_arrived, daemon)))
    return row


#: (name, from, to): the legs of a candle's path, by the stamps that bound them
LEGS = (
    ("to_daemon", "kline_left", "dequeued"),  # emulator send, socket, decode, queue, wake-up
    ("barrier", "dequeued", "barrier"),  # the private-stream ping/pong
    ("fold_commit", "barrier", "committed"),  # engine step + the durable commit
    ("dispatch", "committed", "send"),  # from the commit to the venue's submit
    ("send_to_venue", "send", "arrived"),  # encode, socket, the emulator's receive
    # until ws.send() returned (Trade API only; it may return after the venue has it)
    ("send_to_socket", "send", "written"),
    ("total", "kline_left", "arrived"),
)


def stages(
    transport: str,
    stderr: str,
    kline_closed: dict[int, float],
    order_arrived: dict[str, float],
    daemon: DaemonProcess,
) -> dict[str, object]:
    """Per-leg p50 / p90 / min (ms) of the first order of each candle, from the daemon's
    ``REPLAY_TRACE`` stamps and the emulator's (one monotonic clock for both processes);
    the minimum is the least load-sensitive figure."""
    first_link: dict[int, str] = {}
    for event in daemon.events:
        if isinstance(event, SubmitOrder):
            first_link.setdefault(event.ts, event.client_id)
    legs: dict[str, list[float]] = {name: [] for name, _, _ in LEGS}
    commits: list[float] = []
    beyond: list[float] = []  # the path's time beyond its own durable commit (the fsync)
    cpu: list[float] = []  # the daemon's CPU time from the candle dequeued to the send
    for line in stderr.splitlines():
        at = line.find(PREFIX + "{")
        if at < 0:
            continue
        stamps = json.loads(line[at + len(PREFIX) :])
        close_ms = int(stamps["close_ms"])
        link = first_link.get(close_ms)
        if close_ms not in kline_closed or link not in order_arrived:
            continue
        stamps["kline_left"] = kline_closed[close_ms]
        stamps["arrived"] = order_arrived[str(link)]
        commit = float(stamps.get("commit_s", 0.0)) * 1000
        commits.append(commit)
        if "send_cpu_s" in stamps:
            cpu.append(float(stamps["send_cpu_s"]) * 1000)
        for name, a, b in LEGS:
            if stamps.get(a, 0) > 0 and stamps.get(b, 0) > 0:
                legs[name].append((stamps[b] - stamps[a]) * 1000)
        beyond.append((stamps["arrived"] - stamps["kline_left"]) * 1000 - commit)
    out: dict[str, object] = {"bench": "order_path_stages_ms", "transport": transport}
    extra = [
        ("commit_in_fold", commits),
        ("total_minus_commit", beyond),
        ("daemon_cpu_to_send", cpu),
    ]
    for name, values in [*legs.items(), *extra]:
        if values:
            out[name] = {
                "p50": round(statistics.median(values), 3),
                "p90": round(pct(values, 0.9), 3),
                "p99": round(pct(values, 0.99), 3),
                "min": round(min(values), 3),
            }
    return out


def restart(folder: Path, events: int) -> None:
    path = card(folder, "1m", 50, 200)
    loaded = load_card(path)
    instrument = Instrument(BTCUSDT)
    series = generate(seed=7, n=int(events * 0.985), instrument=instrument)
    store_dir = folder / "big"
    with EventStore(store_dir) as store:
        result = run_backtest(
            loaded,
            series.events(),
            instrument,
            store,
            session_id="big",
            initial_balance=10_000 * MONEY_SCALE,
            first_open_ms=int(series.open_ms[0]),
        )
    opts = DaemonOptions(card=path, store=store_dir, session="big")
    timings = {}
    for label in ("full_refold", "from_snapshot"):
        daemon = Daemon(opts)
        daemon.store = EventStore(store_dir)
        t0 = time.perf_counter()
        daemon._resume()
        timings[label] = time.perf_counter() - t0
        if label == "full_refold":
            daemon.save_snapshot()
        for writer in (daemon.writer, daemon.snapshot_writer):
            writer.close()
        daemon.store.close()
    print(
        json.dumps(
            {
                "bench": "restart_resume_s",
                "events": result.events,
                "full_refold": round(timings["full_refold"], 3),
                "from_snapshot": round(timings["from_snapshot"], 3),
            }
        ),
        flush=True,
    )


def restart_process(folder: Path) -> None:
    bars = load_candle_file(DATA, Instrument(BTCUSDT))[: HISTORY + 50]
    with EmulatorHandle.start(bars, EmulatorConfig(history=HISTORY)) as emulator:
        path = card(folder, "5m", 2, 5)
        first = DaemonProcess(emulator, path, folder / "proc", "p", "--warmup", str(HISTORY))
        first.wait_warm(HISTORY)
        first.play(20)
        first.kill()
        t0 = time.perf_counter()
        second = DaemonProcess(emulator, path, folder / "proc", "p")
        second.wait_running()
        took = time.perf_counter() - t0
        second.stop()
    print(json.dumps({"bench": "restart_process_to_running_s", "seconds": round(took, 3)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--candles", type=int, default=300)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--latency-only", action="store_true", help="Skip the restart benches.")
    parser.add_argument(
        "--transport",
        choices=("both", "rest", "trade_api"),
        default="both",
        help="Which order transport's latency to measure (default both).",
    )
    args = parser.parse_args()
    if not DATA.exists():
        print(json.dumps({"bench": "daemon", "skipped": f"{DATA} absent"}))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        chosen = ("rest", "trade_api") if args.transport == "both" else (args.transport,)
        rows = {t: latency(folder, args.candles, t) for t in chosen}
        table = {
            f"{t}_{k}": rows[t][k]
            for t in rows
            for k in ("p50", "p99", "first_order_p50", "first_order_p99")
        }
        print(json.dumps({"bench": "order_latency_table_ms", **table}), flush=True)
        if args.latency_only:
            return
        restart_process(folder)
        restart(folder, args.events)


if __name__ == "__main__":
    main()
