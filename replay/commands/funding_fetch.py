"""``replay data fetch --funding``: Bybit's funding rate history into a CSV."""

from __future__ import annotations

import time
from pathlib import Path

import click

from replay.commands.data import DataInputError


def fetch_funding_csv(
    symbol: str,
    start_ms: int,
    end_ms: int,
    out: Path,
    base_url: str | None,
    category: str,
    rate: float,
    quiet: bool,
) -> None:
    """Download the settlements in [start_ms, end_ms) and write ``timestamp,rate`` rows
    (``replay data fetch`` has checked the symbol, the range and the rate)."""
    from adapters.historical.bybit_funding import fetch_funding, write_funding_csv
    from adapters.historical.errors import FetchError

    if category == "spot":
        raise DataInputError("--funding: spot markets have no funding (use linear or inverse)")
    began = time.monotonic()

    def progress(pages: int, rates: int) -> None:
        if not quiet:
            click.echo(f"\r{symbol} funding: {rates} rates, {pages} requests", err=True, nl=False)

    try:
        rows = fetch_funding(
            symbol,
            start_ms,
            end_ms,
            base_url=base_url,
            category=category,
            rate=rate,
            progress=progress,
        )
    except FetchError as exc:
        raise DataInputError(str(exc)) from None
    if not quiet:
        click.echo("", err=True)
    if not rows:
        raise DataInputError(f"no {symbol} funding settlements in that range")
    write_funding_csv(rows, out)
    if not quiet:
        took = time.monotonic() - began
        click.echo(f"wrote {len(rows)} funding rates to {out} in {took:.1f}s", err=True)
