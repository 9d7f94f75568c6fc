"""One trial: the card with the trial's params, backtested through ``replay.backtest``.

A trial's session id is ``<sweep>-tNNNN`` and its recorded card path is the sweep's,
so its ``SessionStarted`` (and so its fingerprint) depends only on the sweep and the
params: ``replay sweep rerun`` rebuilds it exactly. A trial whose log is not kept runs
into an ``eventstore.memory.MemoryStore``: the same hash chain, so the same fingerprint,
and nothing written. A worker keeps the candle bytes of the series it runs on
(``KeptEncodedCandles``): they do not depend on the params, so each chunk is encoded
once per worker, not once per trial.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import msgspec
import numpy as np

from adapters.historical import CandleSeries
from adapters.historical.bulk import KeptEncodedCandles
from engine.events import CandleClosed
from engine.instrument import Instrument
from eventstore import EventStore, EventStoreError
from eventstore.memory import MemoryStore
from projections.account import AccountView
from projections.metrics import Summary
from replay.backtest import run_loaded
from replay.cards import LoadedCard, load_card_text
from replay.cards.params import Number, apply
from replay.instruments import resolve as resolve_instrument
from replay.sweep.events import TrialDone

RETURN_POINTS: Final = 256  # equity returns kept per trial, for DSR and PBO
_NOT_METRICS: Final = frozenset({"monthly_returns", "refusals"})


class TrialTask(msgspec.Struct, frozen=True):
    number: int
    params: dict[str, Number]
    session_id: str
    fold: int = 0
    first: int = 0  # candle rows [first, last) of the shared series (last 0: to the end)
    last: int = 0
    warm: int = -1  # rows [warm, first) fed before as backfill (-1: none)
    test: bool = False  # a walk-forward fold's out-of-sample run


class TrialContext(msgspec.Struct, frozen=True):
    """What every trial of a sweep shares (small: sent to each worker once)."""

    card_text: str
    card_path: str
    balance: int
    scratch: str  # a directory for the sweep's scratch files (the pool's mapped candles)
    keep_store: str = ""  # a store to keep every trial's log in ("": none)
    ship_to: str = ""  # a store the driver keeps every trial's log in, shipped back (Ray)


class ShippedLog(msgspec.Struct, frozen=True):
    """A trial's whole log, sent back from a node that cannot write the driver's store."""

    session_id: str
    kind: str
    meta: dict[str, str]
    records: list[bytes]
    fingerprint: str


def keep_shipped(store: EventStore, log: ShippedLog) -> None:
    """Append a shipped log to ``store`` as the stream the trial would have written there
    (one left by a killed run is replaced); its fingerprint must be the trial's."""
    if log.session_id in store:
        store.delete_stream(log.session_id)
    stream = store.create_stream(log.session_id, log.kind, {**log.meta, "status": "running"})
    with stream.writer(durable=False) as writer:
        writer.append_many(log.records)
    if stream.fingerprint != log.fingerprint:
        raise EventStoreError(
            f"shipped log of {log.session_id} has fingerprint {stream.fingerprint} in "
            f"{store.path}, not {log.fingerprint}"
        )
    stream.set_meta("status", log.meta.get("status", "complete"))


METRIC_NAMES: Final = tuple(
    n for n in Summary.__struct_fields__ if n not in _NOT_METRICS
)  # what --objective may name


def metrics_of(summary: Summary) -> dict[str, float]:
    return {n: float(getattr(summary, n)) for n in METRIC_NAMES}


def sampled_returns(equity: np.ndarray, points: int = RETURN_POINTS) -> list[float]:
    """Returns of the equity curve between ``points + 1`` evenly spaced candles."""
    if len(equity) < 2:
        return []
    idx = np.unique(np.linspace(0, len(equity) - 1, min(points, len(equity) - 1) + 1).astype(int))
    values = equity[idx].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rets = np.diff(values) / values[:-1]
    return [float(r) if np.isfinite(r) else 0.0 for r in rets]


class TestWindowView(AccountView):
    """The account over a test window only: warm-up (backfill) candles are not marked,
    so the window's metrics start at its first candle."""

    def _on_candle(self, c: CandleClosed) -> None:
        if not c.backfill:
            super()._on_candle(c)


class Worker:
    """A process's trial runner: the base card loaded once, the candle bytes kept."""

    def __init__(self, ctx: TrialContext, series: CandleSeries) -> None:
        self.ctx = ctx
        self.series = series
        self.base: LoadedCard = load_card_text(ctx.card_text, source=ctx.card_path)
        self.instrument: Instrument = resolve_instrument(
            self.base.symbol, self.base.instrument, None
        )
        self._store: EventStore | None = None
        self.shipped: ShippedLog | None = None  # the last trial's log (ctx.ship_to set)
        self._encoded: tuple[tuple[int, int], CandleSeries, KeptEncodedCandles] | None = None

    @contextmanager
    def store(self, session: str) -> Iterator[EventStore | MemoryStore]:
        """The kept store, or a memory store for this one trial (its fingerprint only;
        with ``ctx.ship_to``, its records too, left in ``self.shipped``)."""
        if self.ctx.keep_store:
            if self._store is None:
                self._store = EventStore(self.ctx.keep_store)
            if session in self._store:  # a trial left by a killed run
                self._store.delete_stream(session)
            yield self._store
            return
        memory = MemoryStore(keep=bool(self.ctx.ship_to))
        yield memory
        if self.ctx.ship_to:
            got = memory.stream(session)
            assert got.records is not None
            self.shipped = ShippedLog(session, got.kind, got.meta, got.records, got.fingerprint)

    def window(self, first: int, last: int) -> tuple[CandleSeries, KeptEncodedCandles]:
        """Rows [first, last) of the series (last 0: to the end) and their candle bytes,
        kept for the next trial over the same rows (a fold's trials come together)."""
        rows = (first, last)
        if self._encoded is None or self._encoded[0] != rows:
            series = self.series
            if first or last:
                series = series.take(slice(first, last or len(series)))
            self._encoded = (rows, series, KeptEncodedCandles(series))
        return self._encoded[1], self._encoded[2]

    def run(self, task: TrialTask) -> TrialDone:
        card = apply(self.base, task.params)
        series, encoded = self.window(task.first, task.last)
        warm = None
        if 0 <= task.warm < task.first:
            warm = self.series.take(slice(task.warm, task.first))
        with self.store(task.session_id) as store:
            result, summary, view = run_loaded(
                card,
                series,
                self.instrument,
                store,
                session_id=task.session_id,
                balance=self.ctx.balance,
                warm=warm,
                view=TestWindowView() if warm is not None else None,
                encoded=encoded,
            )
        return TrialDone(
            number=task.number,
            params=dict(task.params),
            session_id=task.session_id,
            fingerprint=result.fingerprint,
            metrics=metrics_of(summary),
            returns=sampled_returns(view.curve_equity.array()),
            fold=task.fold,
            test=task.test,
            rows=[task.first, task.last, task.warm] if task.fold else [],
        )

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


def session_id(sweep_id: str, number: int, fold: int = 0, test: bool = False) -> str:
    stem = f"{sweep_id}-f{fold}" if fold else sweep_id
    return f"{stem}-test" if test else f"{stem}-t{number:04d}"
