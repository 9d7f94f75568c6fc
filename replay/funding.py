"""Which funding a backtest pays: the card's constant, or real rates from ``--funding FILE``.

``with_history`` puts a file's rates into the card's ``SimConfig``; ``describe`` says in
one line what applied (for the summary table, ``--json`` and the report), from the
``SimConfig`` and instrument alone, so it can be said of any logged session too.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import msgspec

from adapters.historical.errors import DataError
from adapters.historical.funding import load_funding
from adapters.sim.config import SimConfig
from adapters.sim.funding import interval_ms
from engine.events import SessionStarted
from engine.instrument import RATE_SCALE, Instrument
from replay.cards import LoadedCard
from replay.errors import InputError


def with_history(card: LoadedCard, path: Path | None) -> LoadedCard:
    """``card`` with ``path``'s funding rates as its ``sim`` funding series (None: as is)."""
    if path is None:
        return card
    try:
        series = load_funding(path)
    except DataError as exc:
        raise InputError(f"--funding: {exc}") from None
    sim = msgspec.structs.replace(card.sim_config, funding_series=series)
    return dataclasses.replace(card, sim_config=sim)


def _pct(rate_e8: int) -> str:
    text = f"{Decimal(rate_e8) * 100 / RATE_SCALE:f}"
    return (text.rstrip("0").rstrip(".") if "." in text else text) + "%"


def _hours(ms: int) -> str:
    return f"{ms / 3_600_000:g}h"


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def describe(sim: SimConfig, instrument: Instrument, source: str = "") -> str:
    """One line: what funding the venue settled (e.g. "0.01% every 8h (constant)")."""
    every = interval_ms(instrument, sim)
    if every == 0:
        return f"none: {instrument.symbol} is not a perpetual"
    constant = f"{_pct(sim.funding_rate_e8)} every {_hours(every)}"
    if not sim.funding_series:
        return f"{constant} (constant: no funding history given)"
    first, last = sim.funding_series[0][0], sim.funding_series[-1][0]
    named = f" from {source}" if source else ""
    return (
        f"history{named}: {len(sim.funding_series)} rates, {_day(first)} to {_day(last)}"
        f", every {_hours(every)}; {_pct(sim.funding_rate_e8)} before the first, the last"
        " rate after it"
    )


def describe_logged(started: SessionStarted) -> str:
    """``describe`` for a logged session: a backtest's sim settings; a venue's own else."""
    raw = started.settings.get("sim")
    if started.venue != "sim" or not raw:
        return f"as settled by the venue ({started.venue})"
    try:
        sim = msgspec.json.decode(raw, type=SimConfig)
    except msgspec.ValidationError:
        return "unknown (the logged sim settings are from another version)"
    return describe(sim, Instrument(started.instrument))
