"""``replay data``: download candles from Bybit and check candle files.

Exit codes as everywhere in replay: 0 ok, 2 bad input (symbol, dates, interval,
a refused request, an unusable file), with a one-paragraph message.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
import time
from pathlib import Path
from typing import Any

import click

_SYMBOL = re.compile(r"^[A-Z0-9]{2,40}$")


class DataInputError(click.ClickException):
    """Bad input to a data command: exit 2, message only."""

    exit_code = 2


def parse_when(value: str, option: str) -> int:
    """A UTC date or date-time ("2025-04-01", "2025-04-01T12:00", naive = UTC) or epoch ms."""
    text = value.strip()
    if text.isdigit() and len(text) >= 11:
        return int(text)
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise DataInputError(
            f"{option} {value!r}: expected a UTC date like 2025-04-01, a time like "
            "2025-04-01T12:00, or epoch milliseconds"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return (when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)


#: How a file's bars are read; shared by ``replay run`` and ``replay data check``.
stamps_option = click.option(
    "--stamps",
    type=click.Choice(["start", "end"]),
    default="start",
    show_default=True,
    help="Do the data's timestamps mark the start or the end of each bar?",
)
gaps_option = click.option(
    "--gaps",
    type=click.Choice(["fail", "fill", "skip"]),
    default="fail",
    show_default=True,
    help="What to do with missing bars.",
)
#: The store whose instruments cache (``replay data instruments``) is read or written.
store_dir_option = click.option(
    "--store",
    "store_dir",
    default="runs",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Event store directory (its instruments cache: instruments/bybit-linear.json).",
)


@click.group()
def data() -> None:
    """Candle data: download from Bybit, check a file.

    Example: replay data check btc_5m.csv
    """


@data.command()
@click.argument("symbol")
@click.option(
    "--interval",
    default="1",
    show_default=True,
    help="Bybit kline interval: minutes (1 3 5 15 30 60 120 240 360 720), D or W.",
)
@click.option("--start", required=True, help="First candle's day or time (UTC), e.g. 2025-04-01.")
@click.option("--end", required=True, help="End (UTC, exclusive), e.g. 2025-04-02.")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV to write: open_time (ms), open, high, low, close, volume, turnover.",
)
@click.option("--base-url", default=None, help="REST host (default: Bybit mainnet).")
@click.option(
    "--category",
    default="linear",
    show_default=True,
    type=click.Choice(["linear", "inverse", "spot"]),
    help="Bybit market category.",
)
@click.option("--rate", default=10.0, show_default=True, help="At most this many requests/s.")
@click.option(
    "--funding",
    "funding",
    is_flag=True,
    help="Download the funding rate history instead (CSV timestamp,rate, for replay run "
    "--funding).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")
def fetch(
    symbol: str,
    interval: str,
    start: str,
    end: str,
    out: Path,
    base_url: str | None,
    category: str,
    rate: float,
    funding: bool,
    quiet: bool,
) -> None:
    """Download Bybit klines or funding rates into a CSV.

    Covers [--start, --end), UTC; closed candles, or with --funding the funding rates.

    Example: replay data fetch BTCUSDT --start 2025-04-01 --end 2025-04-02
    """
    symbol = symbol.strip().upper()
    if not _SYMBOL.match(symbol):
        raise DataInputError(f"symbol {symbol!r}: expected letters and digits, e.g. BTCUSDT")
    start_ms, end_ms = parse_when(start, "--start"), parse_when(end, "--end")
    if end_ms <= start_ms:
        raise DataInputError(f"--end {end} must be after --start {start}")
    if rate <= 0:
        raise DataInputError(f"--rate {rate} must be > 0")
    if funding:
        from replay.commands.funding_fetch import fetch_funding_csv

        fetch_funding_csv(symbol, start_ms, end_ms, out, base_url, category, rate, quiet)
        return
    from adapters.historical.bybit_fetch import INTERVALS, fetch_klines, write_kline_csv
    from adapters.historical.errors import FetchError

    interval = interval.strip().upper() if interval.strip().isalpha() else interval.strip()
    if interval not in INTERVALS:
        raise DataInputError(f"--interval {interval!r}: expected one of {' '.join(INTERVALS)}")
    began = time.monotonic()
    shown = [0.0]

    def progress(pages: int, candles: int, expected: int) -> None:
        now = time.monotonic()
        if quiet or (now - shown[0] < 0.5 and candles < expected):
            return
        shown[0] = now
        pct = min(100.0, 100.0 * candles / max(1, expected))
        click.echo(
            f"\r{symbol} {interval}: {candles}/{expected} candles, {pages} requests ({pct:.0f}%)",
            err=True,
            nl=False,
        )

    try:
        rows = fetch_klines(
            symbol,
            interval,
            start_ms,
            end_ms,
            base_url=base_url,
            category=category,
            rate=rate,
            progress=progress,
        )
    except FetchError as exc:
        raise DataInputError(str(exc)) from None
    if not quiet and shown[0]:
        click.echo("", err=True)
    if not rows:
        raise DataInputError(f"no closed {symbol} {interval} candles between {start} and {end}")
    write_kline_csv(rows, out)
    if not quiet:
        took = time.monotonic() - began
        click.echo(f"wrote {len(rows)} candles to {out} in {took:.1f}s", err=True)


@data.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--symbol", default="BTCUSDT", show_default=True, help="Instrument (price grid).")
@click.option("--timeframe", default=None, help="Bar length (default: inferred), e.g. 5m.")
@stamps_option
@gaps_option
@click.option("--drop-last", is_flag=True, help="Drop the last candle (still open when saved).")
@click.option("--round-prices", is_flag=True, help="Round off-grid prices to the tick.")
@click.option("--dedupe", is_flag=True, help="Drop rows that repeat the previous row exactly.")
@store_dir_option
def check(
    path: Path,
    symbol: str,
    timeframe: str | None,
    stamps: str,
    gaps: str,
    drop_last: bool,
    round_prices: bool,
    dedupe: bool,
    store_dir: Path,
) -> None:
    """Check a candle file and print what it holds.

    Example: replay data check btc_5m.csv --timeframe 5m
    """
    from adapters.historical import DataError, load_candles
    from replay.instrument_cache import load_cache
    from replay.instruments import instrument_for

    notes: list[str] = []
    try:
        cache = load_cache(store_dir)
        inst = instrument_for(symbol, cache)
        series = load_candles(
            path,
            inst,
            timeframe=timeframe,
            stamps=stamps,
            gaps=gaps,
            drop_last_open=drop_last,
            round_prices=round_prices,
            dedupe=dedupe,
            notes=notes,
        )
    except DataError as exc:
        options = {"round_prices": round_prices, "gaps": gaps, "drop_last_open": drop_last}
        raise DataInputError(_every_problem(exc, path, inst, timeframe, options)) from None
    except ValueError as exc:
        raise DataInputError(str(exc)) from None
    for note in notes:
        click.echo(note)
    first = dt.datetime.fromtimestamp(series.start_ms / 1000, dt.UTC)
    last = dt.datetime.fromtimestamp(series.end_ms / 1000, dt.UTC)
    click.echo(
        f"OK {path}: {len(series)} {series.symbol} {series.timeframe} candles, "
        f"{first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC"
    )
    sys.stdout.flush()


def _every_problem(
    first: Exception, path: Path, inst: Any, timeframe: str | None, options: dict[str, Any]
) -> str:
    """The first problem, then every other kind the file has (``adapters.historical.survey``)."""
    from adapters.historical.survey import survey
    from engine.timeframes import TimeframeError, tf_ms

    try:
        tf = tf_ms(timeframe) if timeframe else None
        found = survey(path, inst, timeframe_ms=tf, **options)
    except (TimeframeError, ValueError):
        return str(first)
    if not found:
        return str(first)
    lines = [f"{len(found)} kind(s) of problem in {path}:", *(f"  - {e}" for e in found)]
    return "\n".join(lines)


@data.command()
@store_dir_option
@click.option("--base-url", default=None, help="REST host (default: Bybit mainnet).")
@click.option(
    "--rate",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0.1, max=600),
    help="At most this many requests/s.",
)
@click.option(
    "--page-size",
    default=1000,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Instruments per request (Bybit allows up to 1000).",
)
@click.option("--quiet", "-q", is_flag=True, help="No summary line.")
def instruments(
    store_dir: Path, base_url: str | None, rate: float, page_size: int, quiet: bool
) -> None:
    """Cache Bybit's linear instrument filters in the store.

    Backtests of any symbol listed there then use its tick size, qty step and
    minimums (below --instrument and a card's instrument:, above the built-in
    table). A cache older than 7 days is used with a warning.

    Example: replay data instruments --store runs
    """
    import asyncio

    from adapters.bybit.errors import BybitError
    from adapters.bybit.instruments import fetch_instruments, mainnet_url
    from replay.instrument_cache import save_cache

    url = (base_url or mainnet_url()).rstrip("/")
    try:
        specs, skipped = asyncio.run(fetch_instruments(url, rate=rate, page_size=page_size))
    except BybitError as exc:
        raise DataInputError(
            f"could not download instruments-info from {url}: {exc}; the cache is unchanged"
            " (check the network, or --base-url)"
        ) from None
    if not specs:
        raise DataInputError(f"{url} listed no linear instruments; the cache is unchanged")
    try:
        cache = save_cache(store_dir, specs, url)
    except OSError as exc:
        raise DataInputError(f"cannot write the instruments cache in {store_dir}: {exc}") from None
    if not quiet:
        extra = f" ({skipped} malformed rows skipped)" if skipped else ""
        click.echo(f"wrote {len(specs)} instruments to {cache.path} ({cache.date}){extra}")
