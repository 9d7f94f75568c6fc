"""``replay run``: from a card and candles to a session in the log and a report folder.

This module is the glue a user touches first: it resolves defaults (the bundled
card, the built-in synthetic market), checks that the data suits the card, names
the session, shows progress on long runs, and prints the summary. The work itself
is ``replay.session.run_backtest``; the report is ``report_from_log`` over the log,
the same function ``replay report`` uses for any session.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa

from adapters.historical import CandleSeries, DataError, generate, load_candles
from adapters.historical.bulk import EncodedCandles
from adapters.historical.resample import Resampled, resample, resampled_text
from engine.events import SessionStarted
from engine.instrument import Instrument, InstrumentError, money_from_str
from eventstore import EventStore
from eventstore.memory import MemoryStore
from projections.account import AccountView
from projections.metrics import Summary, summarize
from replay.cards import IdeaCardError, LoadedCard, load_card, load_card_text
from replay.cards.params import format_params
from replay.cards.schema import MAX_MONEY
from replay.errors import InputError
from replay.fastpath import BulkRun
from replay.funding import describe as describe_funding
from replay.funding import describe_logged as describe_logged_funding
from replay.funding import with_history as with_funding
from replay.instrument_cache import load_cache
from replay.instruments import resolve as resolve_instrument
from replay.memory import fix_mmap_threshold, trim
from replay.report import (
    duration_text,
    iso,
    refusal_rows,
    refusal_warning,
    summary_dict,
    write_report,
)
from replay.session import RunResult, run_backtest
from replay.session_ids import check_session_id, safe_stem
from replay.verify import read_session

PROGRESS_ABOVE = 50_000  # candles; shorter runs finish before a bar is worth drawing


class BacktestRequest(msgspec.Struct):
    card: Path
    data: Path | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    stamps: str = "start"
    gaps: str = "fail"
    timeframe: str | None = None  # run the card at this execution timeframe
    drop_last: bool = False
    round_prices: bool = False
    dedupe: bool = False
    seed: int = 7
    n_candles: int = 43_200
    store: Path = Path("runs")
    session: str | None = None
    balance: str = "10000"
    report_dir: Path | None = None
    write_report: bool = True
    show_progress: bool = True
    params: dict[str, str] = {}  # --set overrides of the card's params
    instrument: str | None = None  # --instrument KEY=VALUE,... (over the card's instrument:)
    fast: bool = True  # replay.fastpath where the card allows it (the same log, sooner)
    funding: Path | None = None  # --funding FILE: real rates (else the card's constant)


class Outcome(msgspec.Struct):
    result: RunResult
    summary: Summary
    info: dict[str, Any]
    report: dict[str, Path]
    seconds: float
    synthetic: bool
    quote: str = "USDT"  # the instrument's quote currency, for the table's money rows

    def as_json(self) -> dict[str, Any]:
        data = summary_dict(self.summary, self.info)
        data.update(
            session_id=self.result.session_id,
            fingerprint=self.result.fingerprint,
            events=self.result.events,
            seconds=round(self.seconds, 3),
            synthetic_data=self.synthetic,
            report={k: str(v) for k, v in self.report.items()},
        )
        return data

    def print_table(self) -> None:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        s = self.summary
        console = Console()
        if self.synthetic:
            console.print(
                "[yellow]Data: SYNTHETIC built-in 1-minute BTC-like candles "
                f"(seed {self.info['seed']}), not real market data.[/yellow]"
            )
        table = Table(title=f"replay backtest — {self.info['card_name']}", show_header=False)
        table.add_column("metric")
        table.add_column("value", justify="right")
        rows = [
            ("period", f"{iso(s.start_ms)} → {iso(s.end_ms)}"),
            ("candles", f"{s.candles:,}"),
            ("trades", f"{s.trades:,}"),
            ("return", f"{s.total_return:+.2%}"),
            ("CAGR", f"{s.cagr:+.2%}"),
            ("max drawdown", f"{s.max_drawdown:.2%}"),
            ("Sharpe", f"{s.sharpe:.2f}"),
            ("Sortino", f"{s.sortino:.2f}"),
            ("win rate", f"{s.win_rate:.1%}"),
            ("profit factor", f"{s.profit_factor:.2f}"),
            ("exposure", f"{s.exposure:.1%}"),
            ("fees paid", f"{s.fees_paid:,.2f} USDT"),
            ("final equity", f"{s.final_equity:,.2f} USDT"),
            ("buy and hold", f"{s.buy_and_hold_return:+.2%}"),
            ("Calmar", f"{s.calmar:.2f}"),
            ("max DD duration", duration_text(s.max_drawdown_duration_ms)),
            ("avg / median trade", f"{s.avg_trade:,.2f} / {s.median_trade:,.2f} USDT"),
            ("best / worst trade", f"{s.best_trade:,.2f} / {s.worst_trade:,.2f} USDT"),
            ("expectancy", f"{s.expectancy:+.3%} per trade"),
            ("SQN", f"{s.sqn:.2f}"),
            (
                "long",
                f"{s.long_trades:,} trades, {s.long_win_rate:.1%} won, {s.long_pnl:,.2f} USDT",
            ),
            (
                "short",
                f"{s.short_trades:,} trades, {s.short_win_rate:.1%} won, {s.short_pnl:,.2f} USDT",
            ),
            (
                "max consecutive",
                f"{s.max_consecutive_wins} wins, {s.max_consecutive_losses} losses",
            ),
            ("funding", self.info.get("funding", "")),
            ("session", self.result.session_id),
            ("fingerprint", self.result.fingerprint),
            ("events", f"{self.result.events:,} in {self.seconds:.2f} s"),
        ]
        rows[-3:-3] = refusal_rows(s.refusals)
        for name, value in rows:
            if value.endswith(" USDT"):
                value = value.removesuffix("USDT") + self.quote
            table.add_row(escape(name), escape(value))
        console.print(table)
        for note in self.info.get("data_notes", []):
            console.print(f"data: {note}")
        warning = refusal_warning(s.refusals)
        if warning:
            console.print(f"[bold yellow]{escape(warning)}[/bold yellow]", soft_wrap=True)
        if self.report:
            console.print(f"report: {self.report['html']}")


def _card_name(card: LoadedCard) -> str:
    name = getattr(card.spec, "name", "") or Path(card.source).stem
    return safe_stem(str(name))


def _load_series(
    req: BacktestRequest, card: LoadedCard, instrument: Instrument, notes: list[str]
) -> tuple[CandleSeries, Resampled]:
    """The candles at the card's execution timeframe: finer data is resampled exactly."""
    if req.data is None:
        series = generate(seed=req.seed, n=req.n_candles, instrument=instrument)
    else:
        series = load_candles(
            req.data,
            instrument,
            stamps=req.stamps,
            gaps=req.gaps,
            drop_last_open=req.drop_last,
            round_prices=req.round_prices,
            dedupe=req.dedupe,
            notes=notes,
        )
    series, done = resample(series, card.timeframe)
    if done.source_timeframe != done.timeframe:
        notes.append(resampled_text(done))
    return series, done


def _unique_session(store: EventStore, base: str) -> str:
    names = {info.name for info in store.streams()}
    if base not in names:
        return base
    n = 2
    while f"{base}-{n}" in names:
        n += 1
    return f"{base}-{n}"


def execute(req: BacktestRequest, on_session: Callable[[str], None] | None = None) -> Outcome:
    fix_mmap_threshold()
    card = with_funding(load_card(req.card, req.params, timeframe=req.timeframe), req.funding)
    warnings: list[str] = []
    instrument = resolve_instrument(
        card.symbol, card.instrument, req.instrument, load_cache(req.store), warnings
    )
    for warning in warnings:  # a stale instruments cache: said even with --json or -q
        print(warning, file=sys.stderr)
    notes: list[str] = []  # what reading the data found (the table's data notes)
    try:
        balance = money_from_str(req.balance, ROUND_HALF_EVEN)
    except InstrumentError:
        raise InputError(f"--balance {req.balance!r} is not a number") from None
    if not 0 < balance <= money_from_str(str(MAX_MONEY), ROUND_HALF_EVEN):
        raise InputError(
            f"--balance {req.balance}: expected a positive amount of at most {MAX_MONEY:.0f} USDT"
        )
    series, resampled = _load_series(req, card, instrument, notes)
    pa.default_memory_pool().release_unused()  # the file reader's buffers: RSS for the run
    trim()
    if req.start_ms is not None or req.end_ms is not None:
        series = series.between(req.start_ms, req.end_ms)
    if len(series) == 0:
        raise DataError(str(req.data or "built-in"), 0, "range", "no candles", "at least one")
    req.store.mkdir(parents=True, exist_ok=True)
    card_name = _card_name(card)
    with EventStore(req.store) as store:
        if req.session is not None:
            session_id = check_session_id(req.session, "--session")
        else:
            stamp = datetime.now(tz=UTC).strftime("%Y%m%d-%H%M%S")
            session_id = _unique_session(store, f"{card_name}-{stamp}")
        if on_session:
            on_session(session_id)
        first_open = int(series.open_ms[0])
        last_close = int(series.close_ms[-1])
        data_label = str(req.data) if req.data else f"synthetic(seed={req.seed})"
        meta = {
            "card_name": card_name,
            "data": data_label,
            "start": iso(first_open),
            "end": iso(last_close),
        }
        if card.params:
            meta["params"] = format_params(card.params)
        view = AccountView()
        started_at = time.perf_counter()
        bulk = BulkRun.for_card(card, series) if req.fast else None
        with _progress(len(series), req.show_progress) as advance:
            result = run_backtest(
                card,
                series.events(),
                instrument,
                store,
                session_id=session_id,
                initial_balance=balance,
                first_open_ms=first_open,
                meta=meta,
                view=view,
                progress=advance,
                bulk=bulk,
            )
        seconds = time.perf_counter() - started_at
        del series, bulk  # the candles are in the log and the view now: memory for the report
        summary = summarize(view, [b.name for b in card.spec.blocks])
        info: dict[str, Any] = {
            "card": str(req.card),
            "card_name": card_name,
            "data": data_label,
            "seed": req.seed,
            "store": str(req.store),
            "fingerprint": result.fingerprint,
            "session_id": session_id,
            "timeframe": card.timeframe,
            "resampled": resampled_text(resampled),
            "data_notes": notes,
            "params": dict(card.params),
            "funding": describe_funding(card.sim_config, instrument, str(req.funding or "")),
        }
        report: dict[str, Path] = {}
        if req.write_report:
            folder = req.report_dir or req.store / "reports" / session_id
            report = write_report(
                folder, view, summary, info, lambda: card.new_strategy(instrument)
            )
            if req.report_dir:  # so `replay sessions rm` finds it
                store.stream(session_id).set_meta("report_dir", str(folder))
    return Outcome(
        result, summary, info, report, seconds, req.data is None, instrument.spec.quote_coin
    )


class _progress:
    """A rich progress bar on stderr for long runs; a no-op otherwise."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled and total >= PROGRESS_ABOVE
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Callable[[int], None] | None:
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TimeRemainingColumn

        self._bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            "{task.completed:,}/{task.total:,} candles",
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task("backtest", total=self.total)
        return self._advance

    def _advance(self, done: int) -> None:
        self._bar.update(self._task, completed=done)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def fold_log(store: EventStore, session_id: str) -> tuple[SessionStarted, AccountView]:
    """A session's ``SessionStarted`` and its account folded from the whole log."""
    view = AccountView()
    started: SessionStarted | None = None
    for _, event in read_session(store, session_id):
        if started is None and isinstance(event, SessionStarted):
            started = event
        view.apply(event)
    if started is None:
        raise DataError(session_id, 1, "first event", "no SessionStarted", "SessionStarted")
    return started, view


def summary_from_log(
    store: EventStore, session_id: str
) -> tuple[SessionStarted, AccountView, Summary, dict[str, Any], LoadedCard | None]:
    """Fold a session and compute its summary: what ``report`` and ``replay.open`` show."""
    started, view = fold_log(store, session_id)
    stream = store.stream(session_id)
    info = {
        "session_id": session_id,
        "card": started.card_path,
        "data": dict(stream.info().meta).get("data", ""),
        "fingerprint": stream.fingerprint,
        "mode": started.mode,
        "params": dict(started.params),
        "funding": describe_logged_funding(started),
    }
    card = _logged_card(started)
    blocks = [b.name for b in card.spec.blocks] if card is not None else []
    return started, view, summarize(view, blocks), info, card


def report_from_log(
    store: EventStore, session_id: str, folder: Path
) -> tuple[dict[str, Path], dict[str, Any]]:
    """Fold a session's log into the report (any mode, complete or interrupted)."""
    started, view, summary, info, card = summary_from_log(store, session_id)
    plan = None
    if card is not None and card.strategy_class is None:
        instrument = Instrument(started.instrument)
        plan = lambda: card.new_strategy(instrument)  # noqa: E731
    paths = write_report(folder, view, summary, info, plan)
    return paths, summary_dict(summary, info)


def _logged_card(started: SessionStarted) -> LoadedCard | None:
    """The logged card, loaded without its ``strategy:`` section: a report runs no
    strategy code (the book folds from the log alone), so a Python class is never
    imported for it. None when the card no longer loads here (a Python strategy card
    without blocks): the report is still made, it just cannot name blocks or draw
    features."""
    import yaml

    try:
        data = yaml.safe_load(started.card_text)
    except yaml.YAMLError:
        return None
    text = started.card_text
    if isinstance(data, dict) and "strategy" in data:
        data.pop("strategy")
        text = yaml.safe_dump(data, sort_keys=False)
    try:
        return load_card_text(
            text,
            source=started.card_path or "<log>",
            params=started.params,
            timeframe=started.timeframe or None,
        )
    except IdeaCardError:
        return None


def load_series(
    req: BacktestRequest, card: LoadedCard, instrument: Instrument, notes: list[str]
) -> CandleSeries:
    """The candles ``req`` runs ``card`` on (``replay sweep`` loads them once for all trials)."""
    return _load_series(req, card, instrument, notes)[0]


def run_loaded(
    card: LoadedCard,
    series: CandleSeries,
    instrument: Instrument,
    store: EventStore | MemoryStore,
    *,
    session_id: str,
    balance: int,
    meta: dict[str, str] | None = None,
    warm: CandleSeries | None = None,
    view: AccountView | None = None,
    encoded: EncodedCandles | None = None,
) -> tuple[RunResult, Summary, AccountView]:
    """One backtest of an already loaded card over already loaded candles, no report:
    the thin entry point a sweep trial calls (the same path as ``execute``).

    ``warm``: candles before ``series`` fed first as backfill (features warm, no trades).
    ``encoded``: ``series``' candle bytes kept across runs (``replay.fastpath``).
    """
    view = view if view is not None else AccountView()
    candles = series.events()
    first_open = int(series.open_ms[0])
    bulk = None
    if warm is not None and len(warm):
        candles = itertools.chain(warm.events(backfill=True), candles)
        first_open = int(warm.open_ms[0])
    else:  # the fast path where the card allows it: the same log, sooner
        bulk = BulkRun.for_card(card, series, encoded)
    result = run_backtest(
        card,
        candles,
        instrument,
        store,
        session_id=session_id,
        initial_balance=balance,
        first_open_ms=first_open,
        meta={"card_name": _card_name(card), **(meta or {})},
        view=view,
        bulk=bulk,
    )
    del bulk, candles  # the fast path's arrays go before the summary's (a worker's peak)
    return result, summarize(view, [b.name for b in card.spec.blocks]), view
