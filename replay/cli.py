"""The ``replay`` command line: one click group, one sub-command per job.

Exit codes, for every command: 0 ok; 2 bad input (card, data, options, unknown
session) with a one-paragraph message and no traceback; 1 an internal error, with
its traceback and the session id; 130 interrupted (Ctrl-C: the session's log keeps
everything up to there and is marked interrupted); ``verify`` and ``diff`` also exit
1 when they find a divergence or a difference; 3 (``replay.errors.EXIT_CORRUPT``) the
store is damaged or a session's hash chain does not match its records (tampering):
``report``/``inspect``/``diff`` refuse to read it, ``sessions`` lists it as TAMPERED.
"""

from __future__ import annotations

import functools
import json
import sys
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
import msgspec

from replay import __version__
from replay.commands.data import data as data_group

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_STORE = "runs"
DEFAULT_CARD = Path(__file__).resolve().parents[1] / "ideacards" / "ma_cross.yaml"


class BadInput(click.ClickException):
    """Bad input from the user: exit 2 with a message, no traceback."""

    exit_code = 2


def _input_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean the user's input is wrong (imported lazily: fast --help)."""
    from adapters.historical import DataError
    from engine.instrument import InstrumentError, OffGridError
    from eventstore import StreamExists, StreamNotFound, WriterLocked
    from replay.cards import IdeaCardError
    from replay.errors import InputError

    return (
        IdeaCardError,
        InputError,
        DataError,
        InstrumentError,
        OffGridError,
        StreamNotFound,
        StreamExists,
        WriterLocked,
        FileNotFoundError,
    )


def _interrupted() -> type[Exception]:
    from replay.session import SessionInterrupted

    return SessionInterrupted


def _corrupt() -> type[Exception]:
    from eventstore import LogCorruptError

    return LogCorruptError


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Map exceptions to the documented exit codes."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
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
        except _corrupt() as exc:
            from replay.errors import EXIT_CORRUPT

            click.echo(f"replay: {exc}; refusing to read it (see `replay verify`)", err=True)
            sys.exit(EXIT_CORRUPT)
        except Exception:
            ctx = click.get_current_context(silent=True)
            session = (ctx.meta.get("session_id") if ctx else None) or "-"
            click.echo(traceback.format_exc(), err=True)
            click.echo(f"replay: internal error (session {session}); please report it.", err=True)
            sys.exit(1)

    return wrapper


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


store_option = click.option(
    "--store",
    "store_dir",
    default=DEFAULT_STORE,
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Event store directory.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def _open_store(path: Path, *, create: bool = False) -> Any:
    from eventstore import EventStore

    if not create and not (path / "data.mdb").exists():
        raise BadInput(f"no event store at {path} (run `replay run` first, or pass --store)")
    return EventStore(path)


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
@click.option(
    "--stamps",
    type=click.Choice(["start", "end"]),
    default="start",
    show_default=True,
    help="Do the data's timestamps mark the start or the end of each bar?",
)
@click.option(
    "--gaps",
    type=click.Choice(["fail", "fill", "skip"]),
    default="fail",
    show_default=True,
    help="What to do with missing bars.",
)
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
@click.option("--seed", default=7, show_default=True, help="Seed of the built-in data.")
@click.option(
    "--candles",
    "n_candles",
    default=43_200,
    show_default=True,
    help="How many built-in 1-minute candles (43,200 = 30 days).",
)
@store_option
@click.option("--session", "session_name", help="Session id (default: card name + UTC time).")
@click.option("--balance", default="10000", show_default=True, help="Initial balance, USDT.")
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Report folder (default: STORE/reports/SESSION).",
)
@click.option("--no-report", is_flag=True, help="Skip writing the report folder.")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override one of the card's params (repeatable), e.g. --set fast=20.",
)
@click.option(
    "--instrument",
    "instrument",
    metavar="KEY=VALUE,...",
    help="Instrument filters, over the card's instrument: and the built-in table, e.g. "
    "tick_size=0.01,qty_step=1,min_qty=1,min_notional=0,quote=USD.",
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
    as_json: bool,
    quiet: bool,
) -> None:
    """Backtest an IdeaCard (default: the bundled moving-average cross on built-in data)."""
    from replay.backtest import BacktestRequest, execute
    from replay.cards.params import parse_sets

    try:
        overrides = parse_sets(sets)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--set") from None

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
    )
    ctx = click.get_current_context()
    outcome = execute(request, on_session=lambda sid: ctx.meta.__setitem__("session_id", sid))
    if as_json:
        _echo_json(outcome.as_json())
    elif not quiet:
        outcome.print_table()


# ------------------------------------------------------------------------ sessions


@cli.command()
@store_option
@json_option
@handle_errors
def sessions(store_dir: Path, as_json: bool) -> None:
    """List the sessions in a store."""
    from eventstore import LogCorruptError
    from eventstore.checked import check_stream
    from replay.errors import EXIT_CORRUPT

    store = _open_store(store_dir)
    rows = []
    broken = []
    for info in store.streams():
        if info.kind == "snapshots":
            continue  # the daemon's restart snapshots, not a session
        meta = dict(info.meta)
        try:
            check_stream(store, info.name)
        except LogCorruptError as exc:
            broken.append(str(exc))
            meta["status"] = "TAMPERED"
        rows.append(
            {
                "session": info.name,
                "mode": info.kind,
                "card": meta.get("card_name", meta.get("card", "")),
                "params": meta.get("params", ""),
                "period": f"{meta.get('start', '?')} → {meta.get('end', '?')}",
                "events": info.last_seq,
                "fingerprint": info.fingerprint,
                "status": meta.get("status", "?"),
            }
        )
    if as_json:
        for row in rows:
            _echo_json(row)
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"sessions in {store_dir}")
        cols = ("session", "mode", "card", "params", "period", "events", "fingerprint", "status")
        for col in cols:
            table.add_column(col, overflow="fold", no_wrap=col == "status")
        for row in rows:
            table.add_row(*(str(row[c]) if c != "fingerprint" else row[c][:16] for c in row))
        Console().print(table)
    for reason in broken:
        click.echo(f"replay: WARNING: {reason}; its events do not match its fingerprint", err=True)
    if broken:
        sys.exit(EXIT_CORRUPT)


# ------------------------------------------------------------------------- inspect


@cli.command()
@click.argument("session")
@store_option
@click.option("--at", "at_seq", type=int, help="Show the state after this sequence number.")
@click.option("--from", "first", type=int, default=1, show_default=True, help="First seq shown.")
@click.option("--type", "type_name", help="Only events of this type (e.g. Fill, SubmitOrder).")
@click.option("--limit", type=int, default=50, show_default=True, help="At most this many.")
@json_option
@handle_errors
def inspect(
    session: str,
    store_dir: Path,
    at_seq: int | None,
    first: int,
    type_name: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Show a session's events, or its state at a sequence number (--at)."""
    from engine.events import EVENT_BY_NAME
    from replay.inspection import event_row, list_events, state_at

    store = _open_store(store_dir)
    click.get_current_context().meta["session_id"] = session
    if at_seq is not None:
        state = state_at(store, session, at_seq)
        if as_json:
            _echo_json(state)
        else:
            click.echo(json.dumps(state, indent=2, default=_json_default))
        return
    if type_name and type_name not in EVENT_BY_NAME:
        import difflib

        close = difflib.get_close_matches(type_name, list(EVENT_BY_NAME), n=1)
        hint = f" — did you mean {close[0]!r}?" if close else ""
        raise BadInput(f"--type {type_name!r} is not an event type{hint}")
    for seq, event in list_events(store, session, first=first, type_name=type_name, limit=limit):
        row = event_row(seq, event)
        if as_json:
            _echo_json(row)
        else:
            rest = " ".join(f"{k}={v}" for k, v in row.items() if k not in ("seq", "type"))
            click.echo(f"{seq:>9}  {row['type']:<18} {rest}"[:240])


# -------------------------------------------------------------------------- verify


@cli.command()
@click.argument("session")
@store_option
@json_option
@handle_errors
def verify(session: str, store_dir: Path, as_json: bool) -> None:
    """Re-fold a session and check every derived event and checkpoint hash."""
    from replay.verify import verify_session

    store = _open_store(store_dir)
    click.get_current_context().meta["session_id"] = session
    result = verify_session(store, session)
    if as_json:
        _echo_json(msgspec.to_builtins(result))
    elif result.ok:
        click.echo(
            f"OK {session}: {result.events} events ({result.inputs} inputs, "
            f"{result.derived} derived, {result.checkpoints} checkpoints), "
            f"fingerprint {result.fingerprint}"
        )
    else:
        d = result.divergence
        assert d is not None
        click.echo(f"DIVERGED {session} at seq {d.seq}: {d.reason}")
        if d.expected is not None:
            click.echo(f"  expected: {json.dumps(d.expected, default=_json_default)}")
        if d.got is not None:
            click.echo(f"  got:      {json.dumps(d.got, default=_json_default)}")
    sys.exit(0 if result.ok else 1)


# ---------------------------------------------------------------------------- diff


@cli.command()
@click.argument("session_a")
@click.argument("session_b")
@store_option
@click.option(
    "--store-b",
    type=click.Path(file_okay=False, path_type=Path),
    help="Store of SESSION_B, if not the same.",
)
@json_option
@handle_errors
def diff(
    session_a: str, session_b: str, store_dir: Path, store_b: Path | None, as_json: bool
) -> None:
    """Show where two sessions first differ (intents, orders, fills), aligned by market time."""
    from replay.compare import diff as diff_records
    from replay.compare import records
    from replay.verify import read_session

    store_a = _open_store(store_dir)
    other = _open_store(store_b) if store_b else store_a
    rec_a = records(e for _, e in read_session(store_a, session_a))
    rec_b = records(e for _, e in read_session(other, session_b))
    result = diff_records(rec_a, rec_b)
    if as_json:
        _echo_json({"finding": "summary", **msgspec.to_builtins(result)})
    else:
        click.echo(f"{'':10}{session_a:>24}{session_b:>24}")
        for kind in result.counts_a:
            click.echo(f"{kind:10}{result.counts_a[kind]:>24}{result.counts_b[kind]:>24}")
        if result.same:
            click.echo("no differences")
        else:
            first = result.first
            assert first is not None
            when = (first.a or first.b or {}).get("market_ms", 0)
            click.echo(f"first difference at record {first.index} (market time {_iso(when)}):")
            click.echo(f"  {session_a}: {json.dumps(first.a, default=_json_default)}")
            click.echo(f"  {session_b}: {json.dumps(first.b, default=_json_default)}")
            click.echo(f"{result.differing} records are in one session and not the other")
    sys.exit(0 if result.same else 1)


# -------------------------------------------------------------------------- report


@cli.command()
@click.argument("session")
@store_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Report folder (default: STORE/reports/SESSION).",
)
@json_option
@handle_errors
def report(session: str, store_dir: Path, out: Path | None, as_json: bool) -> None:
    """Render the report of any session (backtest, demo, live, interrupted) from its log."""
    from replay.backtest import report_from_log

    store = _open_store(store_dir)
    click.get_current_context().meta["session_id"] = session
    paths, data = report_from_log(store, session, out or store_dir / "reports" / session)
    if as_json:
        _echo_json({**data, "files": {k: str(v) for k, v in paths.items()}})
    else:
        for name, path in paths.items():
            click.echo(f"{name:8} {path}")


cli.add_command(data_group)


# ------------------------------------------------------------------ demo / live


def _daemon_options(f: Callable[P, R]) -> Callable[P, R]:
    for option in reversed(
        [
            click.argument("card", type=click.Path(dir_okay=False, path_type=Path)),
            store_option,
            click.option(
                "--session",
                "session_name",
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
            click.option("--emulator-url", default="", help="REST base URL of the emulator."),
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
                show_default=True,
                help="Seconds between reconciliations.",
            ),
            click.option(
                "--warmup",
                default=1000,
                show_default=True,
                help="Closed candles back-filled at start.",
            ),
            click.option(
                "--metrics-port", default=0, show_default=True, help="Prometheus port (0: off)."
            ),
            click.option("--log-json", is_flag=True, help="One JSON object per log line."),
        ]
    ):
        f = option(f)
    return f


def _run_daemon(environment: str, allow_live: bool, **kw: Any) -> None:
    import asyncio

    from replay.daemon import Daemon, DaemonOptions, setup_logging

    venue = kw.pop("venue")
    if venue == "emulator":
        if not kw["emulator_url"]:
            raise BadInput("--venue emulator needs --emulator-url URL")
        environment = "emulator"
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
    )
    click.get_current_context().meta["session_id"] = opts.session
    sys.exit(asyncio.run(Daemon(opts).run()))


@cli.command()
@_daemon_options
@handle_errors
def demo(**kw: Any) -> None:
    """Trade CARD on Bybit's demo venue (or the emulator) until stopped; resumable."""
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
    """Trade CARD on Bybit with real money until stopped; resumable. Try `demo` first."""
    if not confirmed:
        raise BadInput(
            "replay live places real orders with real money; run `replay demo` first, then "
            "add --i-understand-this-trades-real-money"
        )
    _run_daemon("live", True, **kw)


@cli.command()
@click.argument("session")
@store_option
@handle_errors
def halt(session: str, store_dir: Path) -> None:
    """Kill switch: the session cancels its open orders and takes no new entries."""
    from replay.daemon import request_halt

    _open_store(store_dir)
    click.echo(request_halt(store_dir, session))


def main() -> None:
    cli()
