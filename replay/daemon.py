"""The live/demo daemon: the backtest's engine, fed by a venue, made crash-proof by the log.

One asyncio loop. For every event the venue yields (a closed candle, an order
transition, a fill, a clock offset):

1. the event and everything the engine derives from it are appended to the log as
   ONE durable group (one fsync): nothing acts on an event before it is in the log,
   and a command is committed before it is sent;
2. only then are the commands among the derived events sent to the venue.

Every fold goes through the session core (``replay.core``): the daemon is its driver,
the append is one durable group per input, and the commands it returns are sent.

Start and restart are the same path: open (or create) the session's stream, refold
it (``replay.resume``: the derived events are re-derived and must match the log byte
for byte, else the daemon refuses to continue, naming the first differing seq, unless
``--fork-on-divergence NEW`` forks a new session), connect to the venue, and
reconcile (``projections.reconcile``) before the loop resumes: missed executions are
appended, orders the log still calls open are looked up by client order id, commands
that never reached the venue are sent (once: Bybit refuses a second order with the
same orderLinkId, and the adapter resolves lost replies by looking the id up). A
position that still disagrees after all fills becomes a ``PositionDrift`` and halts
trading (``--on-drift halt``, the default) or is adopted (``--on-drift adopt``).

Warm-up: a new session back-fills closed candles over REST, appended with
``backfill=True``; the engine folds them into its features but acts on no intent
from them. Candles missed while the daemon was stopped or its public stream was
down are back-filled the same way after the restart or reconnect. In-progress
klines never reach the log (the adapter passes only confirmed ones).

Shutdown: SIGINT/SIGTERM handlers are installed before anything else. The first
signal stops the loop taking events (so no new intents), optionally cancels open
orders (``--cancel-on-exit``), appends ``SessionStopped``, syncs and returns 0. A
second signal exits at once (status 130); the log is consistent anyway, since each
group commit is atomic.

Halt: ``replay halt SESSION`` writes a request file (``STORE/control/SESSION.halt``)
and signals the daemon (SIGUSR1); the daemon appends ``Halt`` (a stopped daemon
finds the file when it resumes), and the engine cancels open orders and takes no
new entries. The daemon applies the halt itself, so the cancels it derives are
both logged and sent. A halt is kept across restarts (it is in the log).

Crash points for tests: ``REPLAY_CRASH_AT=<point>:<n>`` makes the process SIGKILL
itself the n-th time it reaches ``<point>`` (``after_commit``: commands committed,
not sent; ``after_send``: a command sent, before its answer is folded).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Final

import msgspec

from adapters.bybit.config import BybitConfig
from adapters.bybit.errors import ApiError
from adapters.bybit.keys import load_keys
from adapters.bybit.venue import BybitVenue
from adapters.protocol import Venue, VenueSnapshot
from engine.events import (
    OPEN_STATUSES,
    REQUESTED,
    UNTRIGGERED,
    AmendOrder,
    CancelOrder,
    CandleClosed,
    Event,
    EventBase,
    ExternalFill,
    Fill,
    FundingPaid,
    Halt,
    Liquidated,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderTriggered,
    PositionDrift,
    ReconciliationCorrection,
    SessionStopped,
    SubmitOrder,
    decode,
)
from engine.instrument import money_from_str
from engine.state import EngineState
from eventstore import EventStore, LogCorruptError
from projections.reconcile import (
    HISTORY_UNTIL,
    FinalStatus,
    ReconcileView,
    account_history_until,
    position_drift,
    reconcile,
)
from replay import snapshots
from replay.cards import LoadedCard, load_card
from replay.cards.params import format_params
from replay.cards.source import check_resume
from replay.core import SessionCore, session_started
from replay.daemon_log import LAST_SEQ, JsonFormatter, setup_logging
from replay.dispatch import send_commands
from replay.errors import InputError
from replay.halt import halt_file, request_halt
from replay.latency_trace import LatencyTrace
from replay.margin_setup import set_card_margin
from replay.metrics import DaemonMetrics
from replay.narration import Narrator
from replay.resume import first_event, resume
from replay.startup import DEFAULT_LIMIT_S, retry_startup
from replay.wire_capture import WireCapture

log = logging.getLogger("replay.daemon")

__all__ = [
    "LAST_SEQ",
    "Daemon",
    "DaemonOptions",
    "JsonFormatter",
    "halt_file",
    "request_halt",
    "setup_logging",
]

RETRY_PAUSE_S: Final = 1.0  # after a failed reconciliation or back-fill, before going on
START_ATTEMPTS: Final = 6
BARRIER_TIMEOUT_S: Final = 1.0  # a private-stream pong later than this: fills looked up
IDLE_TICK_S: Final = 0.5  # the loop looks at halts, reconnects and its timer this often
_EXECUTIONS: Final = (Fill, FundingPaid, Liquidated)
_ENDS: Final = (OrderCancelled, OrderExpired, OrderRejected)


class DaemonOptions(msgspec.Struct, kw_only=True):
    card: Path
    store: Path
    session: str
    environment: str = "demo"  # demo | live | emulator
    allow_live: bool = False
    emulator_url: str = ""  # REST base; WS URLs derived (…/v5/public/linear, …/v5/private)
    keys_file: str | None = None
    cancel_on_exit: bool = False
    startup_limit_s: float = DEFAULT_LIMIT_S  # give up connecting after this (exit 75)
    on_drift: str = "halt"  # halt | adopt
    reconcile_every_s: float = 60.0
    warmup_candles: int = 1000
    metrics_port: int = 0  # 0 = off
    snapshot_every: int = 50_000  # events between engine snapshots (fast restart)
    params: dict[str, str] = {}  # --set NAME=VALUE overrides of the card's params:
    quiet: bool = False  # no per-candle / per-fill lines on stdout (replay.narration)
    wire: bool = True  # keep every venue byte in <session>.wire (replay verify --wire)
    trade_api: bool = False  # orders over Bybit's WebSocket Trade API (not on demo)
    refold: bool = False  # on resume, refold and verify the whole log, not from a snapshot
    fork_on_divergence: str = ""  # on a log this engine disowns: fork to this new session


class CrashPoints:
    """Deterministic self-kill points for crash tests (``REPLAY_CRASH_AT=point:n``)."""

    def __init__(self, spec: str | None) -> None:
        self.point, self.left = "", 0
        if spec:
            point, _, n = spec.partition(":")
            self.point, self.left = point, int(n or "1")

    def reached(self, point: str) -> None:
        if point != self.point or self.left <= 0:
            return
        self.left -= 1
        if self.left == 0:
            os.kill(os.getpid(), signal.SIGKILL)


class Daemon:
    """Owns one session: its writer, its engine state and its venue connection."""

    def __init__(self, opts: DaemonOptions) -> None:
        self.opts = opts
        self.store: EventStore | None = None
        self.writer: Any = None
        self.snapshot_writer: Any = None
        self._since_snapshot = 0
        self.core: SessionCore | None = None
        self.card: LoadedCard | None = None
        self.venue: Venue | None = None
        self.view: ReconcileView | None = None
        self.last_seq = 0
        self.last_candle_open = -1  # open time of the newest execution candle in the log
        self.last_candle_close = -1
        self.stopping = asyncio.Event()
        self.halt_requested = False
        self.signals = 0
        self.crash = CrashPoints(os.environ.get("REPLAY_CRASH_AT"))
        self.metrics = DaemonMetrics(opts.metrics_port)
        self._reconcile_lock = asyncio.Lock()
        self._pending_reconcile = False
        self.narrator: Narrator | None = None
        self.wire = WireCapture(enabled=opts.wire)
        self._group: tuple[EventBase, list[Event]] | None = None  # the last one committed
        self.trace = LatencyTrace()  # per-candle stage stamps (REPLAY_TRACE=1, the bench)
        self._commit_s = 0.0  # how long the last durable commit took
        self._idle: asyncio.Timeout | None = None  # the loop's wait for the next venue event

    @property
    def state(self) -> EngineState | None:
        return self.core.state if self.core is not None else None

    # ------------------------------------------------------------------ lifecycle

    def install_signal_handlers(self, loop: asyncio.AbstractEventLoop) -> None:
        """SIGINT/SIGTERM stop, SIGUSR1 halts; only possible on the main thread."""
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self._on_stop_signal, sig)
            loop.add_signal_handler(signal.SIGUSR1, self._on_halt_signal)
        except (RuntimeError, ValueError):
            log.warning("not on the main thread: no signal handlers")

    def _on_stop_signal(self, sig: int) -> None:
        self.signals += 1
        if self.signals > 1:
            log.warning("second signal: exiting now (the log is consistent)")
            os._exit(130)
        log.info("signal %s: stopping after the current event", signal.Signals(sig).name)
        self.stopping.set()
        self._wake()

    def _on_halt_signal(self) -> None:
        self.halt_requested = True
        self._wake()

    def _wake(self) -> None:
        """End the loop's idle wait now (it then looks at the stop and halt requests)."""
        if self._idle is not None:
            self._idle.reschedule(asyncio.get_running_loop().time())

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self.install_signal_handlers(loop)
        self.metrics.start()
        self.store = EventStore(self.opts.store)
        try:
            return await self._run()
        finally:
            if self.venue is not None:
                await self.venue.close()
            self.wire.close()
            for writer in (self.writer, self.snapshot_writer):
                if writer is not None:
                    writer.close()
            self.store.close()

    async def _run(self) -> int:
        assert self.store is not None
        existing = {info.name for info in self.store.streams()}
        resumed = self.opts.session in existing
        if resumed:
            self._resume()
        else:
            self.card = load_card(self.opts.card, self.opts.params)
        assert self.card is not None
        config = self._venue_config(self.card)
        keys = load_keys(self.opts.keys_file)
        self.venue = await retry_startup(
            "connecting to the venue",
            lambda: self._connect(config, keys),
            limit_s=self.opts.startup_limit_s,
        )
        assert self.venue.spec is not None
        await set_card_margin(self.venue, self.card)  # or refuse to trade
        warm: list[CandleClosed] = []
        if not resumed:
            warm = await self._fetch_warm_up()  # first: a refusal leaves no session behind
            await self._start_session(self.venue)
        await self._reconcile_at_start()
        if not resumed:
            await self._warm_up(warm)
        # From here the adapter back-fills whatever the log lacks: now (candles missed while
        # stopped) and after every public reconnect; such candles are folded, not traded.
        self.venue.candles_logged_up_to(self.last_candle_open)
        if resumed:
            await self._attempt("candle back-fill", self.venue.backfill_candles)
        log.info("session %s running (seq %d)", self.opts.session, self.last_seq)
        return await self._loop()

    async def _connect(self, config: BybitConfig, keys: Any) -> BybitVenue:
        """One connection attempt; a failed one is closed before it is retried."""
        venue = BybitVenue(config, keys, on_reconnect=self._on_reconnect, tap=self.wire.tap)
        try:
            await venue.start()
        except BaseException:
            await venue.close()
            raise
        return venue

    def _venue_config(self, card: LoadedCard) -> BybitConfig:
        o = self.opts
        if o.environment == "emulator":
            base = o.emulator_url.rstrip("/")
            ws = base.replace("http://", "ws://").replace("https://", "wss://")
            return BybitConfig(
                environment="emulator",
                symbol=card.symbol,
                timeframe=card.timeframe,
                rest_url=base,
                public_ws_url=f"{ws}/v5/public/linear",
                private_ws_url=f"{ws}/v5/private",
                keys_file=o.keys_file,
                trade_api=o.trade_api,
                trade_ws_url=f"{ws}/v5/trade",
            )
        return BybitConfig(
            environment=o.environment,  # type: ignore[arg-type]
            allow_live=o.allow_live,
            symbol=card.symbol,
            timeframe=card.timeframe,
            keys_file=o.keys_file,
            trade_api=o.trade_api,
        )

    # ------------------------------------------------------------ start / resume

    def _resume(self) -> None:
        """Rebuild the session from its log, verified (``replay.resume``), and open its writer."""
        assert self.store is not None
        given = load_card(self.opts.card, self.opts.params)
        started = first_event(self.store, self.opts.session)
        if self.opts.params and given.params != dict(started.params):
            raise InputError(
                f"session {self.opts.session} runs with params {format_params(started.params)};"
                f" --set asks for {format_params(given.params)}. A session keeps its params:"
                " resume without --set (or with the same values), or start a new --session"
            )
        check_resume(started, given, self.opts.session)  # the strategy code it logged
        done = resume(
            self.store,
            self.opts.session,
            given,
            refold_all=self.opts.refold,
            fork_to=self.opts.fork_on_divergence or None,
        )
        if done.session != self.opts.session:  # forked: this process goes on as the fork
            self.opts = msgspec.structs.replace(self.opts, session=done.session)
        self.core, self.card, self.view = done.core, done.core.card, done.view
        self.core.sink = self._commit
        self.last_seq = LAST_SEQ[0] = done.last_seq
        self.last_candle_open, self.last_candle_close = (
            done.last_candle_open,
            done.last_candle_close,
        )
        stream = self.store.stream(self.opts.session)
        self.writer = done.writer or stream.writer(durable=True)
        self.wire.attach(self.store, self.opts.session)
        self.snapshot_writer = snapshots.open_writer(self.store, self.opts.session)
        stream.set_meta("status", "running")
        log.info("resumed %s at seq %d", self.opts.session, self.last_seq)

    async def _start_session(self, venue: Venue) -> None:
        assert self.store is not None and self.card is not None and venue.spec is not None
        snap = await retry_startup(
            "reading the account at start",
            lambda: venue.snapshot(since_ms=None),
            limit_s=self.opts.startup_limit_s,
        )
        usdt = [b for b in snap.balances if b.coin == "USDT"]
        balance = usdt[0].wallet if usdt else money_from_str("0")
        started = session_started(
            self.card,
            venue.spec,
            session_id=self.opts.session,
            mode="live" if self.opts.environment == "live" else "demo",
            venue=venue.name,
            ts=snap.ts,
            initial_balance=balance,
            settings={HISTORY_UNTIL: str(account_history_until(snap))},
        )
        stream = self.store.create_stream(
            self.opts.session,
            kind=started.mode,
            meta={
                "status": "running",
                "card": self.card.source,
                "venue": started.venue,
                "start": _iso(started.ts),
            },
        )
        self.writer = stream.writer(durable=True)
        self.wire.attach(self.store, self.opts.session)
        self.snapshot_writer = snapshots.open_writer(self.store, self.opts.session)
        self.core = SessionCore.open(started, self.card, self._commit)
        self.view = ReconcileView(venue.spec.symbol, self.core.state.account)
        await self.fold([started])

    async def _fetch_warm_up(self) -> list[CandleClosed]:
        """The closed candles that warm every feature before live candles arrive."""
        assert self.venue is not None and self.card is not None
        venue, n = self.venue, self.opts.warmup_candles
        try:
            return await retry_startup(
                "back-filling candles at start",
                lambda: venue.recent_candles(n),
                limit_s=self.opts.startup_limit_s,
            )
        except ApiError as exc:  # e.g. a 1m card against a venue serving only 5m bars
            raise InputError(
                f"the venue refused the card's {self.card.timeframe} candles of "
                f"{self.card.symbol}: {exc.message} (retCode {exc.code})"
            ) from None

    async def _warm_up(self, candles: list[CandleClosed]) -> None:
        """Fold the back-filled candles (flagged ``backfill``: nothing trades on them)."""
        self.wire.tap.local(candles, "warm-up back-fill (its REST pages are frames)")
        await self.fold(candles)
        self.metrics.warmup.set(len(candles))
        assert self.state is not None
        if not self.state.is_warm():
            log.warning(
                "the strategy is not warm after %d back-filled candles: it will not trade until "
                "every feature is (raise --warmup to start trading sooner)",
                len(candles),
            )

    # ------------------------------------------------------------------ the loop

    async def _loop(self) -> int:
        assert self.venue is not None
        events = self.venue.events().__aiter__()
        next_reconcile = time.monotonic() + self.opts.reconcile_every_s
        while not self.stopping.is_set():
            if self.halt_requested or halt_file(self.opts.store, self.opts.session).exists():
                self.halt_requested = False
                halt_file(self.opts.store, self.opts.session).unlink(missing_ok=True)
                await self.fold([Halt(ts=self._now(), reason="operator", source="replay halt")])
            if self._pending_reconcile:
                self._pending_reconcile = False
                if not await self._attempt("reconciliation", self.reconcile, "reconnect"):
                    self._pending_reconcile = True
            if time.monotonic() >= next_reconcile:
                next_reconcile = time.monotonic() + self.opts.reconcile_every_s
                await self._attempt("reconciliation", self.reconcile, "timer")
            # The loop's own task awaits the venue's queue (an idle tick cancels the read,
            # which loses nothing: BybitVenue.events()), so a venue event wakes it in one
            # step of the event loop; a signal ends the tick early (``_wake``).
            try:
                async with asyncio.timeout(IDLE_TICK_S) as self._idle:
                    event = await anext(events)
            except TimeoutError:
                continue
            except StopAsyncIteration:
                break
            finally:
                self._idle = None
            received = time.perf_counter()
            if self._not_logged(event):
                continue
            if isinstance(event, CandleClosed) and event.open_ms <= self.last_candle_open:
                self.wire.tap.dropped(event, "candle already logged")
                continue  # already logged (a back-fill after a reconnect overlaps)
            if isinstance(event, CandleClosed) and not event.backfill:
                self.trace.start(event.close_ms, received)
                await self._fold_candle(event, received)
                self.trace.add("written", getattr(self.venue, "last_write_at", 0.0))
                self.trace.finish(log)
            else:
                await self.fold([event], received=received)
        return await self._shutdown()

    async def _fold_candle(self, candle: CandleClosed, received: float) -> None:
        """Fold a closed candle after everything the venue says happened up to its close.

        The kline and the fills come on different sockets, so a fill of the closing bar
        can arrive after the kline. A private-stream barrier (ping/pong) brings every
        message the venue sent before it into the queue; those stamped at or before the
        close are folded first, as a backtest would, then the candle, then the rest.

        A pong proves nothing about messages the venue has yet to push (Bybit orders no
        topic against another, nor its pongs against its matching engine), and a late
        one may not come within ``BARRIER_TIMEOUT_S``. So when the barrier times out, or
        a market order of an earlier bar is still open (its fills are certain and not
        here), the fills are looked up over REST (``catch_up``) before the candle. Only
        fills, fees and funding move the engine's balance: a wallet message is logged,
        never read, so a late one cannot size an order.
        """
        assert self.venue is not None
        answered = await self.venue.private_barrier(BARRIER_TIMEOUT_S)
        self.trace.mark("barrier")
        after = await self._fold_early(candle)
        owed = self._fills_owed(candle, after)
        if not answered or owed:
            why = (
                f"market order {', '.join(owed)} still open"
                if answered
                else f"no private-stream pong within {BARRIER_TIMEOUT_S:g} s"
            )
            when = _iso(candle.close_ms)
            log.warning(
                "before the candle closing %s: %s; looking the fills up over REST", when, why
            )
            self.metrics.fill_lookups.labels(
                why="open market order" if answered else "no pong"
            ).inc()
            if await self._attempt("fill look-up before a candle", self.venue.catch_up):
                after += await self._fold_early(candle)
            if still := self._fills_owed(candle, after):
                log.warning(
                    "the candle closing %s is folded without the fills of %s (not found over"
                    " REST either); they are folded when they come, after it",
                    when,
                    ", ".join(still),
                )
        await self.fold([candle], received=received)
        for event in after:
            if self._not_logged(event):
                continue
            if isinstance(event, CandleClosed) and event.open_ms <= self.last_candle_open:
                self.wire.tap.dropped(event, "candle already logged")
                continue
            await self.fold([event])

    async def _fold_early(self, candle: CandleClosed) -> list[EventBase]:
        """Fold the queued venue events stamped at or before ``candle``'s close; return
        the rest (later ones, and candles), to be folded after it."""
        assert self.venue is not None
        after: list[EventBase] = []
        for ready in self.venue.drain_ready():
            if ready.ts <= candle.close_ms and not isinstance(ready, CandleClosed):
                if not self._not_logged(ready):
                    await self.fold([ready])
            else:
                after.append(ready)
        return after

    def _fills_owed(self, candle: CandleClosed, queued: Sequence[EventBase]) -> list[str]:
        """Client ids of plain market orders placed before ``candle``'s bar ended and still
        open in the book with no end queued: the venue has filled (or ended) them, the
        stream has not said so."""
        assert self.view is not None
        ended = {e.client_id for e in queued if isinstance(e, _ENDS)}
        return [
            o.client_id
            for o in self.view.open_orders()
            if o.order_type == "Market"
            and not o.trigger_price
            and o.created_ts < candle.close_ms
            and o.client_id not in ended
        ]

    async def _attempt(self, what: str, job: Callable[..., Awaitable[None]], *args: Any) -> bool:
        """Run ``job``; a venue that cannot be reached now is no reason to stop trading.

        Returns False (after logging) when the job failed; the caller retries it later. A
        damaged log is no venue trouble: it stops the daemon (exit 3), never retried.
        """
        try:
            await job(*args)
        except LogCorruptError:
            raise
        except Exception as exc:
            log.warning("%s failed, will retry: %s: %s", what, type(exc).__name__, exc)
            await asyncio.sleep(RETRY_PAUSE_S)
            return False
        return True

    async def _reconcile_at_start(self) -> None:
        """Nothing is traded before the log agrees with the venue: retry, then give up."""
        for attempt in range(START_ATTEMPTS):
            if await self._attempt("reconciliation at start", self.reconcile, "start"):
                return
            await asyncio.sleep(min(30.0, 2.0**attempt))
        raise RuntimeError(
            f"could not reconcile with the venue after {START_ATTEMPTS} attempts; "
            "nothing was traded (restart when the venue answers)"
        )

    def _not_logged(self, event: EventBase) -> bool:
        """True for a venue event that must not reach the log, noted in the wire log: a
        transport duplicate (an execution already logged, or an order transition the
        order has already made: Bybit reports an acceptance both in the REST reply and on
        the order stream), or the account's history (an execution from before the
        session, which a REST look-up of executions may list; reconciliation's rule)."""
        assert self.view is not None
        if self._seen_before(event):
            self.wire.tap.dropped(event, "duplicate")
            return True
        if isinstance(event, _EXECUTIONS) and event.ts < self.view.since_ms:
            self.wire.tap.dropped(event, "account history (before the session)")
            return True
        return False

    def _seen_before(self, event: EventBase) -> bool:
        assert self.view is not None
        if isinstance(event, _EXECUTIONS):
            return event.exec_id in self.view.exec_ids
        if isinstance(event, OrderAccepted | OrderTriggered | OrderCancelled | OrderExpired):
            order = self.view.order(event.client_id)
            if order is None:
                return False  # unknown to the log: let the engine report it
            if isinstance(event, OrderAccepted):
                return order.status != REQUESTED
            if isinstance(event, OrderTriggered):
                return order.status != UNTRIGGERED
            return order.status not in OPEN_STATUSES
        return False

    def _now(self) -> int:
        assert self.venue is not None
        return self.venue.now_ms()

    async def _shutdown(self) -> int:
        assert self.core is not None and self.view is not None
        # With --cancel-on-exit the engine derives the cancels (logged, then sent).
        stop = SessionStopped(ts=self._now(), reason="signal", cancel_open=self.opts.cancel_on_exit)
        await self.fold([stop])
        self.save_snapshot()
        assert self.store is not None
        stream = self.store.stream(self.opts.session)
        stream.set_meta("status", "stopped")
        if self.last_candle_close >= 0:  # what `replay sessions` shows as the period's end
            stream.set_meta("end", _iso(self.last_candle_close))
        log.info("session %s stopped cleanly at seq %d", self.opts.session, self.last_seq)
        return 0

    # ------------------------------------------------------------------ folding

    async def fold(self, inputs: Sequence[EventBase], received: float | None = None) -> None:
        """Each input through the session core (one durable group), then its commands sent."""
        assert self.core is not None and self.view is not None
        for event in inputs:
            # The account's other activity is logged as external events, never as ours.
            event = self.view.ownership.as_input(event) if self.view.ownership else event
            if isinstance(event, CandleClosed):
                self.last_candle_open = max(self.last_candle_open, event.open_ms)
                self.last_candle_close = max(self.last_candle_close, event.close_ms)
            commands = self.core.step(event)
            group = self._group  # this input's group (a nested fold below commits its own)
            if commands:
                if received is not None:
                    self.trace.mark("committed")
                    self.trace.add("commit_s", self._commit_s)
                self.crash.reached("after_commit")
                pipelined = self.venue is not None and self.venue.pipelined

                def sent() -> None:
                    self.crash.reached("after_send")

                await send_commands(commands, self._send_unit, sent, pipelined=pipelined)
                if received is not None and isinstance(event, CandleClosed):
                    self.metrics.latency.observe(time.perf_counter() - received)
            self._narrate(event, group[1] if group is not None else [])
            if self._since_snapshot >= self.opts.snapshot_every:
                self.save_snapshot()
            if isinstance(event, ExternalFill) and not self._reconcile_lock.locked():
                self._pending_reconcile = True  # judge the drift it makes without waiting
            if isinstance(event, PositionDrift) and self.opts.on_drift == "halt":
                detail = f"position drift: log {event.local_qty} lots, venue {event.venue_qty}"
                await self.fold([Halt(ts=event.ts, reason=detail, source="reconciliation")])
            if group is not None:
                seen, derived = group
                self.metrics.observe(seen, self.core.state, self.view)
                for d in derived:
                    self.metrics.observe(d, self.core.state, self.view)
            if type(event) is CandleClosed and self.venue is not None:
                self.metrics.rate_limit_waits.set(self.venue.rate_limit_waits())

    def _narrate(self, event: EventBase, derived: Sequence[EventBase]) -> None:
        """The person-facing line of a step, once its commands are out (replay.narration)."""
        if self.opts.quiet or self.core is None:
            return
        if self.narrator is None:
            self.narrator = Narrator(self.core.instrument, lambda line: print(line, flush=True))
        try:
            self.narrator.after(event, derived, self.core.state.position.qty)
        except OSError as exc:  # nobody reads stdout any more (| head): trading goes on
            log.warning("per-candle lines stopped: stdout failed (%s)", exc)
            self.opts.quiet = True

    def save_snapshot(self) -> None:
        """Snapshot the engine and the view after ``last_seq`` (a restart starts there)."""
        assert self.core is not None and self.view is not None
        snapshots.save(
            self.snapshot_writer, self.last_seq, self.core.state, self.view, self.last_candle_open
        )
        self._since_snapshot = 0

    def _commit(self, event: EventBase, derived: list[Event]) -> None:
        """The core's sink: an input and its derived events, one durable group."""
        self._group = (event, derived)
        self._append([event, *derived])

    def _append(self, events: Sequence[EventBase]) -> None:
        assert self.writer is not None and self.view is not None
        t0 = time.perf_counter()
        seqs = self.wire.append(self.writer, events)
        self._commit_s = time.perf_counter() - t0
        self.last_seq = LAST_SEQ[0] = seqs[-1]
        self._since_snapshot += len(events)
        for e in events:
            self.view.apply(e)
        self.metrics.appended.inc(len(events))
        if log.isEnabledFor(logging.DEBUG):
            for e in events:
                log.debug("append %s", type(e).__name__, extra={"seq": self.last_seq})

    async def _send_unit(self, cmds: list[EventBase]) -> None:
        """Send commands of one kind: one alone as itself, more as one batch request."""
        assert self.venue is not None
        if len(cmds) == 1:
            await self._send(cmds[0])
            return
        self.trace.mark("send")
        try:
            if all(isinstance(c, SubmitOrder) for c in cmds):
                await self.venue.submit_batch([c for c in cmds if isinstance(c, SubmitOrder)])
            elif all(isinstance(c, AmendOrder) for c in cmds):
                await self.venue.amend_batch([c for c in cmds if isinstance(c, AmendOrder)])
            elif all(isinstance(c, CancelOrder) for c in cmds):
                await self.venue.cancel_batch([c for c in cmds if isinstance(c, CancelOrder)])
            else:
                for cmd in cmds:
                    await self._send(cmd)
        except Exception as exc:  # the venue answers through events; this is transport failure
            log.error("sending %d commands failed: %s", len(cmds), exc)

    async def _send(self, cmd: EventBase, maybe_sent: bool = False) -> None:
        assert self.venue is not None
        self.trace.mark("send")
        try:
            if isinstance(cmd, SubmitOrder):
                await self.venue.submit(cmd, maybe_sent=maybe_sent)
            elif isinstance(cmd, AmendOrder):
                await self.venue.amend(cmd)
            elif isinstance(cmd, CancelOrder):
                await self.venue.cancel(cmd)
        except Exception as exc:  # the venue answers through events; this is transport failure
            log.error("sending %s failed: %s", type(cmd).__name__, exc)

    # ----------------------------------------------------------- reconciliation

    def _on_reconnect(self, stream: str, n: int) -> None:
        self.metrics.reconnects.labels(stream=stream).inc()
        self._pending_reconcile = True

    async def reconcile(self, why: str) -> None:
        """Diff the log against a venue snapshot and append the corrections."""
        assert self.venue is not None and self.view is not None
        async with self._reconcile_lock:
            # Executions since the newest the log has, with a minute's margin (never all).
            newest = self.view.last_exec_ms
            since = newest - 60_000 if newest else None
            snap: VenueSnapshot = await self.venue.snapshot(since_ms=since)
            lookups: dict[str, FinalStatus] = {}
            open_at_venue = {o.client_id for o in snap.open_orders}
            for order in self.view.open_orders():
                if order.client_id in open_at_venue:
                    continue
                final = await self.venue.final_status(order.client_id)
                lookups[order.client_id] = FinalStatus(final.status, final.venue_id, final.reason)
            corrections = reconcile(
                self.view,
                snap,
                ts=snap.ts,
                lookups=lookups,
            )
            self.venue.release_held()  # terminal events that waited for fills just appended
            if corrections:
                log.info("reconcile (%s): %d corrections", why, len(corrections))
                self.metrics.corrections.inc(len(corrections))
            unsent = [
                c.client_id
                for c in corrections
                if isinstance(c, ReconciliationCorrection) and c.kind == "unsent"
            ]
            self.wire.tap.local(corrections, f"reconciliation ({why})")
            await self.fold(corrections)
            # Drift is judged on the book after the corrections are folded.
            adopt = self.opts.on_drift == "adopt"
            await self.fold(position_drift(self.view, snap, ts=snap.ts, adopt=adopt))
            for client_id in unsent:
                cmd = self._logged_command(client_id, SubmitOrder)
                if cmd is not None:
                    log.info("sending %s, committed before a crash and never sent", client_id)
                    await self._send(cmd, maybe_sent=True)
            still_open = {o.client_id for o in snap.open_orders}
            for order in self.view.open_orders():
                if order.client_id in self.view.cancel_requested and order.client_id in still_open:
                    cancel = self._logged_command(order.client_id, CancelOrder)
                    if cancel is not None:
                        await self._send(cancel)

    def _logged_command(self, client_id: str, kind: type[EventBase]) -> EventBase | None:
        """The last logged command of ``kind`` for ``client_id`` (re-sent, never re-made)."""
        assert self.store is not None
        found: EventBase | None = None
        for _, raw in self.store.stream(self.opts.session).read():
            event = decode(raw)
            if type(event) is kind and getattr(event, "client_id", None) == client_id:
                found = event
        return found


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")
