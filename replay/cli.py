"""The ``replay`` command line: one click group, one sub-command per job.

Exit codes, for every command: 0 ok; 2 bad input (card, data, options, unknown
session) with a one-paragraph message and no traceback; 1 an internal error, with
its traceback and the session id; 130 interrupted (Ctrl-C or SIGTERM: the session's
log keeps everything up to there and is marked interrupted); ``verify`` and ``diff``
also exit 1 when they find a divergence or a difference (``verify``: or no events);
3 (``replay.errors.EXIT_CORRUPT``) the store is damaged or a session's hash chain does
not match its records (tampering): ``report``/``inspect``/``diff`` refuse to read it,
``sessions`` lists it as TAMPERED; 141 when the reader of the output goes away
(``| head``), quietly; ``demo``/``live`` exit 75 when the venue stays unreachable at
start (``replay.startup``). A full or failing disk is a message with exit 2. Session
ids are checked by ``replay.session_ids`` (exit 2).
"""

from __future__ import annotations

import errno
import functools
import json
import os
import sys
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar

import click
import msgspec

from replay import __version__
from replay.commands.check import check as check_command
from replay.commands.data import data as data_group
from replay.commands.data import gaps_option, stamps_option
from replay.commands.indicators import indicators as indicators_command
from replay.commands.setopt import parse_set_option, set_option
from replay.session_ids import SESSION_ID

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_STORE = "runs"
DEFAULT_CARD = Path(__file__).resolve().parents[1] / "ideacards" / "ma_cross.yaml"


class BadInput(click.ClickException):
    """Bad input from the user: exit 2 with a message, no traceback."""

    exit_code = 2


def _input_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean the user's input is wrong (imported lazily: fast --help)."""
    from adapters.bybit.errors import ConfigError, KeysError
    from adapters.historical import DataError
    from engine.instrument import InstrumentError, OffGridError
    from engine.strategy import StrategyError
    from eventstore import StoreReadOnly, StreamExists, StreamNotFound, WriterLocked
    from replay.cards import IdeaCardError
    from replay.errors import InputError

    return (
        IdeaCardError,
        InputError,
        DataError,
        KeysError,
        ConfigError,
        InstrumentError,
        OffGridError,
        StrategyError,
        StreamNotFound,
        StreamExists,
        StoreReadOnly,
        WriterLocked,
        FileNotFoundError,
    )


#: after a damaged-store message (exit 3)
STORE_DAMAGED_HINT = (
    "replay: the event store cannot be read safely; nothing was changed. Restore it from a "
    "copy, or run the command against another --store."
)


def _store_errors() -> type[Exception]:
    """A damaged store (other event log errors are internal: exit 1 with a traceback)."""
    from eventstore import LogCorruptError

    return LogCorruptError


def _interrupted() -> type[Exception]:
    from replay.session import SessionInterrupted

    return SessionInterrupted


#: The machine, not the program: a full or failing disk, a read-only mount, a quota.
_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EIO, errno.EROFS, errno.EDQUOT})


def _hung_up() -> NoReturn:
    """The reader of our output went away (``| head``): stop quietly, as Unix tools do."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # the exit-time flush must not fail again
    sys.exit(141)  # 128 + SIGPIPE


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Map exceptions to the documented exit codes."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return _run_json_errors(fn, *args, **kwargs)
        except click.ClickException:
            raise
        except KeyboardInterrupt:
            click.echo("replay: interrupted", err=True)
            sys.exit(130)
        except _interrupted() as exc:
            click.echo(f"replay: {exc}; the log keeps everything up to there", err=True)
            sys.exit(130)
        except _input_errors() as exc:
            raise BadInput(str(exc)) from None
        except _store_errors() as exc:
            from replay.errors import EXIT_CORRUPT

            click.echo(f"replay: {exc}; refusing to read it (see `replay verify`)", err=True)
            click.echo(STORE_DAMAGED_HINT, err=True)
            sys.exit(EXIT_CORRUPT)
        except BrokenPipeError:
            _hung_up()
        except Exception as exc:
            if isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS:
                where = f" {exc.filename}" if exc.filename else ""
                raise BadInput(f"cannot read or write{where}: {exc.strerror}") from None
            ctx = click.get_current_context(silent=True)
            session = (ctx.meta.get("session_id") if ctx else None) or "-"
            click.echo(traceback.format_exc(), err=True)
            click.echo(f"replay: internal error (session {session}); please report it.", err=True)
            sys.exit(1)

    return wrapper


def _run_json_errors(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Under ``--json``, a bad-input error is one JSON object on stdout with its exit code."""
    try:
        return fn(*args, **kwargs)
    except click.ClickException as exc:
        if not kwargs.get("as_json"):
            raise
        _echo_json({"error": exc.format_message(), "code": exc.exit_code})
        sys.exit(exc.exit_code)
    except _input_errors() as exc:
        if not kwargs.get("as_json"):
            raise
        _echo_json({"error": str(exc), "code": BadInput.exit_code})
        sys.exit(BadInput.exit_code)


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, default=_json_default, sort_keys=False))


def _json_default(value: Any) -> Any:
    if isinstance(value, msgspec.Struct):
        return msgspec.to_builtins(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _parse_day(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise BadInput(
            f"--{name} {value!r}: expected a date like 2025-04-01 or 2025-04-01T12:00"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="replay")
def cli() -> None:
    """replay: a deterministic, event-sourced trading engine for Bybit perpetuals.

    Every candle, intent, order and fill goes to an event log (LMDB, default ./runs);
    backtest, demo and live are the same engine over the same kind of log.
    """


def _a_directory(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    """A store is a directory: /dev/null, a FIFO or a file in its place is a usage error."""
    if value.exists() and not value.is_dir():
        raise click.BadParameter(f"{value} is not a directory (a store is a directory)")
    return value


def _http_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """An http(s) URL with a host, or empty (not given)."""
    from urllib.parse import urlparse

    if value:
        parts = urlparse(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise click.BadParameter(
                f"{value!r}: expected an http:// or https:// URL with a host, "
                "for example http://127.0.0.1:8080"
            )
        try:
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            raise click.BadParameter(f"{value!r}: the port is not a number 0-65535") from None
    return value


store_option = click.option(
    "--store",
    "store_dir",
    default=DEFAULT_STORE,
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    callback=_a_directory,
    help="Event store directory.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
trust_option = click.option(
    "--trust-logged-code",
    "trust_code",
    is_flag=True,
    help="Run a Python strategy's source from the log even if no file on disk matches it.",
)


def _open_store(path: Path, *, create: bool = False, write: bool = True) -> Any:
    """The store at ``path``; ``write=False`` opens it read-only, so reading commands also
    work on a read-only mount."""
    from eventstore import EventStore

    if not create and not (path / "data.mdb").exists():
        raise BadInput(f"no event store at {path} (run `replay run` first, or pass --store)")
    store = EventStore(path, readonly=not write)
    ctx = click.get_current_context(silent=True)
    if ctx is not None:  # released when the command ends, so one process can run several
        ctx.call_on_close(store.close)
    return store


# ----------------------------------------------------------------------------- run


@cli.command()
@click.argument("card", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--data",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Candles: CSV, Bybit kline JSON or Parquet. Default: built-in synthetic data.",
)
@click.option("--start", help="First day (UTC), e.g. 2025-04-01.")
@click.option("--end", help="End (UTC, exclusive), e.g. 2025-05-01.")
@stamps_option
@gaps_option
@click.option(
    "--timeframe",
    help="Run the card at this execution timeframe (e.g. 15m); finer data is resampled.",
)
@click.option("--drop-last", is_flag=True, help="Drop the last candle (still open when saved).")
@click.option(
    "--round-prices",
    is_flag=True,
    help="Round prices that are off the instrument's tick grid (half-even) instead of failing.",
)
@click.option("--dedupe", is_flag=True, help="Drop data rows that repeat the previous one exactly.")
@click.option(
    "--seed",
    default=7,
    show_default=True,
    type=click.IntRange(min=0),
    help="Seed of the built-in data.",
)
@click.option(
    "--candles",
    "n_candles",
    default=43_200,
    show_default=True,
    type=click.IntRange(1, 10_000_000),
    help="How many built-in 1-minute candles (43,200 = 30 days).",
)
@store_option
@click.option(
    "--session", "session_name", type=SESSION_ID, help="Session id (default: card name + UTC time)."
)
@click.option("--balance", default="10000", show_default=True, help="Initial balance, USDT.")
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Report folder (default: STORE/reports/SESSION).",
)
@click.option("--no-report", is_flag=True, help="Skip writing the report folder.")
@set_option
@click.option(
    "--instrument",
    "instrument",
    metavar="KEY=VALUE,...",
    help="Instrument filters, over the card's instrument: and the built-in table, e.g. "
    "tick_size=0.01,qty_step=1,min_qty=1,min_notional=0,quote=USD.",
)
@click.option(
    "--funding",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Real funding rates (CSV timestamp,rate or the JSON of /v5/market/funding/history; "
    "replay data fetch --funding writes one); else the card's sim.funding_rate.",
)
@json_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bar, no table.")
@handle_errors
def run(
    card: Path | None,
    data: Path | None,
    start: str | None,
    end: str | None,
    stamps: str,
    gaps: str,
    timeframe: str | None,
    drop_last: bool,
    round_prices: bool,
    dedupe: bool,
    seed: int,
    n_candles: int,
    store_dir: Path,
    session_name: str | None,
    balance: str,
    report_dir: Path | None,
    no_report: bool,
    sets: tuple[str, ...],
    instrument: str | None,
    funding: Path | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Backtest an IdeaCard and write its report.

    CARD defaults to the bundled moving-average cross; --data defaults to built-in
    synthetic candles.

    Example: replay run ideacards/ma_cross.yaml --data btc_5m.csv --start 2025-04-01
    """
    from replay.backtest import BacktestRequest, execute

    overrides = parse_set_option(sets)

    request = BacktestRequest(
        card=card or DEFAULT_CARD,
        data=data,
        start_ms=_parse_day(start, "start"),
        end_ms=_parse_day(end, "end"),
        stamps=stamps,
        gaps=gaps,
        timeframe=timeframe,
        drop_last=drop_last,
        round_prices=round_prices,
        dedupe=dedupe,
        seed=seed,
        n_candles=n_candles,
        store=store_dir,
        session=session_name,
        balance=balance,
        report_dir=report_dir,
        write_report=not no_report,
        show_progress=not quiet and not as_json,
        params=overrides,
        instrument=instrument,
        funding=funding,
    )
    ctx = click.get_current_context()
    outcome = execute(request, on_session=lambda sid: ctx.meta.__setitem__("session_id", sid))
    if as_json:
        _echo_json(outcome.as_json())
    elif not quiet:
        outcome.print_table()


# ------------------------------------------------------------------------ sessions


@cli.group(invoke_without_command=True)
@store_option
@json_option
@click.pass_context
@handle_errors
def sessions(ctx: click.Context, store_dir: Path, as_json: bool) -> None:
    """List the sessions in a store; rm and prune delete them.

    Example: replay sessions --store runs
    """
    if ctx.invoked_subcommand is not None:
        return
    from replay.commands import sessions as admin

    listed = admin.rows(_open_store(store_dir, write=False), store_dir)
    if as_json:
        for row in listed:
            _echo_json(row.as_json())
        _warn_tampered(listed)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"sessions in {store_dir}", box=None, pad_edge=False)
    for col in admin.COLUMNS:
        numeric = col in ("trades", "return")
        table.add_column(col, overflow="fold", justify="right" if numeric else "left")
    for row in listed:
        table.add_row(*row.cells())
    Console(width=min(Console().width, 100)).print(table)
    _warn_tampered(listed)


def _warn_tampered(listed: list[Any]) -> None:
    """A session failing its hash chain is listed, named on stderr, and exits 3."""
    from replay.errors import EXIT_CORRUPT

    broken = [row.problem for row in listed if row.problem]
    for reason in broken:
        click.echo(f"replay: WARNING: {reason}; its events do not match its fingerprint", err=True)
    if broken:
        sys.exit(EXIT_CORRUPT)


def _delete_sessions(store_dir: Path, removals: list[Any], yes: bool, as_json: bool) -> None:
    from replay.commands import sessions as admin

    store = _open_store(store_dir)
    if removals and not yes:
        for r in removals:
            click.echo(f"  {r.session}: {', '.join(r.streams)}; report {r.report or '-'}", err=True)
        if as_json or not click.confirm(f"Delete {len(removals)} session(s)?", err=True):
            raise BadInput("nothing deleted (pass --yes to delete without asking)")
    for r in removals:
        done = admin.remove(store, store_dir, r)
        if as_json:
            _echo_json({"deleted": done.session, **msgspec.to_builtins(done)})
        else:
            click.echo(f"deleted {done.session} ({done.records:,} events)")


yes_option = click.option("--yes", "-y", is_flag=True, help="Delete without asking.")


@cli.group()
def store() -> None:
    """Store upkeep: salvage a damaged store.

    Example: replay store salvage runs runs-saved
    """


@store.command("salvage")
@click.argument("src", type=click.Path(path_type=Path, file_okay=False))
@click.argument("dst", type=click.Path(path_type=Path, file_okay=False))
@json_option
@handle_errors
def store_salvage(src: Path, dst: Path, as_json: bool) -> None:
    """Copy every intact, verifying session of SRC into DST.

    Lists what was saved and what was lost (and why); exits 3 when anything was lost.

    Example: replay store salvage runs runs-saved
    """
    from eventstore.salvage import SalvageRefused
    from replay.commands import salvage as sv
    from replay.errors import EXIT_CORRUPT

    try:
        result = sv.salvage_store(src, dst)
    except SalvageRefused as exc:
        raise BadInput(str(exc)) from None
    if as_json:
        _echo_json(sv.as_json(result))
    else:
        for line in sv.lines(result):
            click.echo(line)
    if result.lost:
        sys.exit(EXIT_CORRUPT)


@sessions.command("rm")
@click.argument("ids", nargs=-1, required=True)
@store_option
@yes_option
@json_option
@handle_errors
def sessions_rm(ids: tuple[str, ...], store_dir: Path, yes: bool, as_json: bool) -> None:
    """Delete sessions, their side streams and report folders.

    A running session (its writer lock is held) is never deleted.

    Example: replay sessions rm ma_cross-20250401-120000 --yes
    """
    from replay.commands import sessions as admin

    store = _open_store(store_dir)
    removals = admin.plan(store, store_dir, list(ids))
    running = [r.session for r in removals if admin.is_running(store, r.session)]
    if running:
        raise BadInput(f"session {running[0]} is running (its writer lock is held); stop it first")
    _delete_sessions(store_dir, removals, yes, as_json)


@sessions.command("prune")
@click.option("--keep", type=click.IntRange(min=0), required=True, help="Newest sessions kept.")
@store_option
@yes_option
@json_option
@handle_errors
def sessions_prune(keep: int, store_dir: Path, yes: bool, as_json: bool) -> None:
    """Delete all but the newest --keep N sessions.

    Running sessions are kept, and named on stderr.

    Example: replay sessions prune --keep 10 --yes
    """
    from replay.commands import sessions as admin

    removals, running = admin.prune_plan(_open_store(store_dir), store_dir, keep)
    for sid in running:
        click.echo(f"kept {sid}: it is running", err=True)
    _delete_sessions(store_dir, removals, yes, as_json)


# ------------------------------------------------------------------------- inspect


@cli.command()
@click.argument("session", type=SESSION_ID)
@store_option
@click.option("--at", "at_seq", type=int, help="Summarize the state after this sequence number.")
@click.option("--full", is_flag=True, help="With --at: the whole engine state, not a summary.")
@click.option("--raw", is_flag=True, help="Prices in ticks, sizes in lots, money in 1e-8 units.")
@click.option("--from", "first", type=int, default=1, show_default=True, help="First seq shown.")
@click.option("--type", "type_name", help="Only events of this type (e.g. Fill, SubmitOrder).")
@click.option("--limit", type=int, default=50, show_default=True, help="At most this many.")
@trust_option
@json_option
@handle_errors
def inspect(
    session: str,
    store_dir: Path,
    trust_code: bool,
    at_seq: int | None,
    full: bool,
    raw: bool,
    first: int,
    type_name: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Show a session's events, or its state at a seq (--at).

    Prices and money are in the quote coin (USDT), sizes in the base coin (BTC);
    --raw shows the log's ticks, lots and 1e-8 money units.

    Example: replay inspect SESSION --type Fill --limit 5
    """
    from engine.events import EVENT_BY_NAME
    from engine.instrument import Instrument
    from replay.commands.units import humanize
    from replay.inspection import event_row, list_events, state_at, summary_at

    store = _open_store(store_dir, write=False)
    click.get_current_context().meta["session_id"] = session
    if at_seq is not None:
        from replay.cards.source import say, session_note, trusting

        with trusting(trust_code):
            say(session_note(store, session))
            state = (
                state_at(store, session, at_seq)
                if full
                else summary_at(store, session, at_seq, raw=raw)
            )
        if as_json:
            _echo_json(state)
        else:
            click.echo(json.dumps(state, indent=2, default=_json_default))
        return
    if type_name and type_name not in EVENT_BY_NAME:
        import difflib

        close = difflib.get_close_matches(type_name, list(EVENT_BY_NAME), n=1)
        hint = f" — did you mean {close[0]!r}?" if close else ""
        raise BadInput(
            f"--type {type_name!r} is not an event type{hint}; one of: {', '.join(EVENT_BY_NAME)}"
        )
    instrument = None
    for seq, event in list_events(store, session, first=first, type_name=type_name, limit=limit):
        row = event_row(seq, event)
        if not raw:
            if instrument is None:
                from replay.verify import read_session

                started = next(e for _, e in read_session(store, session))
                instrument = Instrument(started.instrument)  # type: ignore[attr-defined]
            row = humanize(row, instrument)
        if as_json:
            _echo_json(row)
        else:
            rest = " ".join(f"{k}={v}" for k, v in row.items() if k not in ("seq", "type"))
            click.echo(f"{seq:>9}  {row['type']:<18} {rest}"[:240])


# -------------------------------------------------------------------------- verify


@cli.command()
@click.argument("session", type=SESSION_ID)
@store_option
@trust_option
@json_option
@click.option(
    "--wire",
    is_flag=True,
    help="Also re-run the adapter over the venue bytes kept in SESSION.wire (live/demo).",
)
@handle_errors
def verify(session: str, store_dir: Path, trust_code: bool, as_json: bool, wire: bool) -> None:
    """Re-fold a session and check every event and checkpoint.

    Exit 1 names the first seq where the log and the engine disagree.

    Example: replay verify SESSION
    """
    from replay.cards.source import say, session_note, trusting
    from replay.statuses import FINISHED, session_status
    from replay.verify import verify_session

    store = _open_store(store_dir, write=False)
    click.get_current_context().meta["session_id"] = session
    with trusting(trust_code):
        say(session_note(store, session))
        result = verify_session(store, session)
    status = session_status(store.stream(session))
    empty = result.ok and result.events == 0
    from replay.wire_verify import describe, verify_wire

    wired = verify_wire(store, session) if wire else None
    if as_json:
        extra = {"wire": msgspec.to_builtins(wired)} if wired is not None else {}
        _echo_json({**msgspec.to_builtins(result), "status": status, "empty": empty, **extra})
    elif empty:
        click.echo(f"EMPTY {session} ({status}): the session has no events; nothing to verify")
    elif result.ok:
        counts = (
            f"{result.events} events ({result.inputs} inputs, {result.derived} derived, "
            f"{result.checkpoints} checkpoints), fingerprint {result.fingerprint}"
            + (f" ({result.version_note})" if result.version_note else "")
        )
        if status in FINISHED:
            click.echo(f"OK {session}: {counts}")
        else:
            click.echo(
                f"{status.upper()} {session}: not finished; what it logged verifies: {counts}"
            )
    else:
        d = result.divergence
        assert d is not None
        click.echo(f"DIVERGED {session} at seq {d.seq}: {d.reason}")
        if d.expected is not None:
            click.echo(f"  expected: {json.dumps(d.expected, default=_json_default)}")
        if d.got is not None:
            click.echo(f"  got:      {json.dumps(d.got, default=_json_default)}")
    if wired is not None and not as_json:
        click.echo("\n".join(describe(session, wired)))
    wire_ok = wired is None or wired.ok
    sys.exit(0 if result.ok and not empty and wire_ok else 1)


# ---------------------------------------------------------------------------- diff


@cli.command()
@click.argument("session_a", type=SESSION_ID)
@click.argument("session_b", type=SESSION_ID)
@store_option
@click.option(
    "--store-b",
    type=click.Path(file_okay=False, path_type=Path),
    help="Store of SESSION_B, if not the same.",
)
@click.option("--from", "from_time", help="Compare from this market time (UTC), e.g. 2025-04-01.")
@click.option(
    "--after-warmup", is_flag=True, help="Compare from the later of the two first candles."
)
@json_option
@handle_errors
def diff(
    session_a: str,
    session_b: str,
    store_dir: Path,
    store_b: Path | None,
    from_time: str | None,
    after_warmup: bool,
    as_json: bool,
) -> None:
    """Show where two sessions first differ, by market time.

    Compares intents, orders and fills, and shows both sessions' metrics side by
    side; exit 1 when they differ.

    Example: replay diff demo-1 backtest-1 --store-b other_runs --after-warmup
    """
    from replay.commands.diffing import METRICS, fmt_metric, load, readable, since
    from replay.compare import diff as diff_records

    if from_time and after_warmup:
        raise BadInput("--from and --after-warmup both set a start; pass one")
    store_a = _open_store(store_dir, write=False)
    other = _open_store(store_b, write=False) if store_b else store_a
    side_a, side_b = load(store_a, session_a), load(other, session_b)
    start = _parse_day(from_time, "from")
    if after_warmup:
        start = max(side_a.first_candle_ms, side_b.first_candle_ms)
    result = diff_records(since(side_a.records, start), since(side_b.records, start))
    if as_json:
        metrics = {"a": side_a.metrics, "b": side_b.metrics}
        _echo_json(
            {"finding": "summary", **msgspec.to_builtins(result), "from_ms": start, **metrics}
        )
    else:
        if start is not None:
            click.echo(f"from market time {_iso(start)}")
        click.echo(f"{'':14}{session_a:>24}{session_b:>24}")
        for kind in result.counts_a:
            click.echo(f"{kind:14}{result.counts_a[kind]:>24}{result.counts_b[kind]:>24}")
        for name in METRICS:
            va = fmt_metric(name, side_a.metrics[name])
            vb = fmt_metric(name, side_b.metrics[name])
            click.echo(f"{name:14}{va:>24}{vb:>24}")
        if result.same:
            click.echo("no differences")
        else:
            first = result.first
            assert first is not None
            when = (first.a or first.b or {}).get("market_ms", 0)
            click.echo(f"first difference at record {first.index} (market time {_iso(when)}):")
            click.echo(f"  {session_a}: {readable(first.a, side_a.instrument)}")
            click.echo(f"  {session_b}: {readable(first.b, side_b.instrument)}")
            click.echo(f"{result.differing} records are in one session and not the other")
    sys.exit(0 if result.same else 1)


# -------------------------------------------------------------------------- report


@cli.command()
@click.argument("session", type=SESSION_ID)
@store_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Report folder (default: STORE/reports/SESSION).",
)
@json_option
@handle_errors
def report(session: str, store_dir: Path, out: Path | None, as_json: bool) -> None:
    """Render any session's report folder from its log.

    Works for backtest, demo, live and interrupted sessions.

    Example: replay report SESSION --out /tmp/report
    """
    from replay.backtest import report_from_log

    store = _open_store(store_dir, write=False)
    click.get_current_context().meta["session_id"] = session
    paths, data = report_from_log(store, session, out or store_dir / "reports" / session)
    if as_json:
        _echo_json({**data, "files": {k: str(v) for k, v in paths.items()}})
    else:
        for name, path in paths.items():
            click.echo(f"{name:8} {path}")


cli.add_command(data_group)
cli.add_command(check_command)
cli.add_command(indicators_command)

# replay sweep / replay sweeps live in replay.sweep.commands, which uses the helpers above.
import replay.sweep.commands as sweep_commands  # noqa: E402

cli.add_command(sweep_commands.sweep)
cli.add_command(sweep_commands.sweeps)


# ------------------------------------------------------------------ demo / live


def _daemon_options(f: Callable[P, R]) -> Callable[P, R]:
    for option in reversed(
        [
            click.argument("card", type=click.Path(dir_okay=False, path_type=Path)),
            store_option,
            click.option(
                "--session",
                "session_name",
                type=SESSION_ID,
                required=True,
                help="Session id; the same id resumes it.",
            ),
            click.option(
                "--venue",
                type=click.Choice(["bybit", "emulator"]),
                default="bybit",
                show_default=True,
                help="bybit, or the local emulator (tests and rehearsals).",
            ),
            click.option(
                "--emulator-url",
                default="",
                callback=_http_url,
                help="REST base URL of the emulator (http://HOST:PORT).",
            ),
            click.option(
                "--keys",
                "keys_file",
                type=click.Path(dir_okay=False),
                help="API key file (default: BYBIT_API_KEY / BYBIT_API_SECRET).",
            ),
            click.option("--cancel-on-exit", is_flag=True, help="Cancel open orders on shutdown."),
            click.option(
                "--on-drift",
                type=click.Choice(["halt", "adopt"]),
                default="halt",
                show_default=True,
                help="When the venue's position disagrees with the log after reconciliation.",
            ),
            click.option(
                "--reconcile-every",
                default=60.0,
                type=click.FloatRange(min=0, min_open=True, max=86_400),
                show_default=True,
                help="Seconds between reconciliations.",
            ),
            click.option(
                "--warmup",
                default=1000,
                type=click.IntRange(0, 1_000_000),
                show_default=True,
                help="Closed candles back-filled at start.",
            ),
            click.option(
                "--metrics-port",
                default=0,
                show_default=True,
                type=click.IntRange(0, 65_535),
                help="Prometheus port (0: off).",
            ),
            click.option("--log-json", is_flag=True, help="One JSON object per log line."),
            set_option,
            click.option(
                "--quiet",
                "-q",
                is_flag=True,
                help="No line per candle decision and per fill on stdout (logs stay on stderr).",
            ),
            click.option(
                "--trade-api",
                is_flag=True,
                help="Orders over Bybit's WebSocket Trade API (REST while it is down; "
                "not offered on the demo venue).",
            ),
            click.option(
                "--refold",
                is_flag=True,
                help="On resume, refold and verify the whole log instead of from the snapshot.",
            ),
            click.option(
                "--fork-on-divergence",
                "fork_on_divergence",
                type=SESSION_ID,
                default=None,
                metavar="NEW_SESSION",
                help="If the log no longer verifies under this engine, go on as a new "
                "session NEW_SESSION (its inputs re-derived) instead of refusing.",
            ),
            click.option(
                "--startup-timeout",
                default=120.0,
                show_default=True,
                type=click.FloatRange(min=0),
                help="Seconds to keep retrying an unreachable venue at start (then exit 75).",
            ),
        ]
    ):
        f = option(f)
    return f


def _run_daemon(environment: str, allow_live: bool, **kw: Any) -> None:
    import asyncio
    import logging

    from replay.daemon import Daemon, DaemonOptions, setup_logging

    venue = kw.pop("venue")
    if venue == "emulator":
        if not kw["emulator_url"]:
            raise BadInput("--venue emulator needs --emulator-url URL")
        environment = "emulator"
    if kw["trade_api"] and environment == "demo":
        raise BadInput(
            "--trade-api: Bybit's demo venue has no WebSocket Trade API (orders go over REST)"
        )
    setup_logging(kw["session_name"], kw.pop("log_json"))
    opts = DaemonOptions(
        card=kw["card"],
        store=kw["store_dir"],
        session=kw["session_name"],
        environment=environment,
        allow_live=allow_live,
        emulator_url=kw["emulator_url"],
        keys_file=kw["keys_file"],
        cancel_on_exit=kw["cancel_on_exit"],
        on_drift=kw["on_drift"],
        reconcile_every_s=kw["reconcile_every"],
        warmup_candles=kw["warmup"],
        metrics_port=kw["metrics_port"],
        startup_limit_s=kw["startup_timeout"],
        params=parse_set_option(kw["sets"]),
        quiet=kw["quiet"],
        trade_api=kw["trade_api"],
        refold=kw["refold"],
        fork_on_divergence=kw["fork_on_divergence"] or "",
    )
    click.get_current_context().meta["session_id"] = opts.session
    from replay.startup import VENUE_UNREACHABLE, VenueUnreachable

    try:
        code = asyncio.run(Daemon(opts).run())
    except VenueUnreachable as exc:
        logging.getLogger("replay.daemon").error("%s", exc)
        click.echo(f"replay: {exc}", err=True)
        sys.exit(VENUE_UNREACHABLE)
    sys.exit(code)


@cli.command()
@_daemon_options
@handle_errors
def demo(**kw: Any) -> None:
    """Trade CARD on Bybit's demo venue until stopped.

    The same --session resumes it; --venue emulator trades against the local emulator.

    Example: replay demo ideacards/ma_cross.yaml --session demo-1
    """
    _run_daemon("demo", False, **kw)


@cli.command()
@_daemon_options
@click.option(
    "--i-understand-this-trades-real-money",
    "confirmed",
    is_flag=True,
    help="Required: this places real orders with real money.",
)
@handle_errors
def live(confirmed: bool, **kw: Any) -> None:
    """Trade CARD on Bybit with real money until stopped.

    Resumable with the same --session. Try `replay demo` first.

    Example: replay live card.yaml --session live-1 --i-understand-this-trades-real-money
    """
    if not confirmed:
        raise BadInput(
            "replay live places real orders with real money; run `replay demo` first, then "
            "add --i-understand-this-trades-real-money"
        )
    _run_daemon("live", True, **kw)


@cli.command()
@click.argument("session", type=SESSION_ID)
@store_option
@handle_errors
def halt(session: str, store_dir: Path) -> None:
    """Kill switch: cancel open orders, take no new entries.

    Example: replay halt demo-1
    """
    from replay.daemon import request_halt

    _open_store(store_dir)
    click.echo(request_halt(store_dir, session))


def main() -> None:
    try:
        cli()
    except BrokenPipeError:  # raised while click itself wrote (help, usage)
        _hung_up()
