"""Instrument specs the app knows without asking a venue (backtests run offline).

Values are Bybit's linear instruments-info filters. Live and demo sessions fetch
the spec from the venue instead. For anything else (another venue, a stock, a test
file) the card's ``instrument:`` section or ``replay run --instrument`` gives the spec.

Precedence (``resolve``): ``--instrument`` > the card's ``instrument:`` > the store's
instruments cache (``replay data instruments``, ``replay.instrument_cache``) > the
built-in table. ``--instrument`` keys it leaves out are taken from the spec below it. The spec
a session used is logged in its ``SessionStarted``; ``verify`` and ``report`` read it
from there, never from this table.
"""

from __future__ import annotations

import difflib
from decimal import Decimal, InvalidOperation

from engine.events import InstrumentSpec
from engine.instrument import BTCUSDT, Instrument, InstrumentError
from replay.errors import InputError
from replay.instrument_cache import InstrumentCache

KNOWN: dict[str, InstrumentSpec] = {
    "BTCUSDT": BTCUSDT,
    "ETHUSDT": InstrumentSpec(
        symbol="ETHUSDT",
        tick_size="0.01",
        qty_step="0.01",
        min_qty="0.01",
        min_notional="5",
        max_qty="7240",
        base_coin="ETH",
    ),
    "SOLUSDT": InstrumentSpec(
        symbol="SOLUSDT",
        tick_size="0.01",
        qty_step="0.1",
        min_qty="0.1",
        min_notional="5",
        max_qty="79770",
        base_coin="SOL",
    ),
}


def instrument_for(symbol: str, cache: InstrumentCache | None = None) -> Instrument:
    """The instrument for ``symbol`` (cache, then built-in), or an InputError with hints."""
    spec = (cache.specs.get(symbol.upper()) if cache else None) or KNOWN.get(symbol.upper())
    if spec is None:
        raise InputError(unknown_symbol(symbol, cache))
    return Instrument(spec)


def unknown_symbol(symbol: str, cache: InstrumentCache | None) -> str:
    """Why ``symbol`` has no spec: the closest listed symbol, and how to get or pass one."""
    names = sorted({*KNOWN, *(cache.specs if cache else {})})
    close = difflib.get_close_matches(symbol.upper(), names, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else ""
    if cache is None:
        where = (
            f"symbol {symbol!r} has no built-in instrument spec (known: {', '.join(KNOWN)})"
            f"{hint}; there is no instruments cache in the store: run"
            " `replay data instruments` to download every Bybit linear symbol"
        )
    else:
        old = " (stale: run `replay data instruments` to refresh it)" if cache.stale() else ""
        where = (
            f"symbol {symbol!r} is not a Bybit linear instrument: neither the built-in table"
            f" nor the instruments cache {cache.path} of {cache.date}{old}"
            f" ({len(cache.specs)} symbols) lists it{hint}"
        )
    return (
        f"{where}; for another market pass --instrument {_EXAMPLE}"
        " or add an instrument: section to the card"
    )


_EXAMPLE = "tick_size=0.01,qty_step=1,min_qty=1,min_notional=0"
_KEYS = {
    "tick_size": "tick_size",
    "qty_step": "qty_step",
    "min_qty": "min_qty",
    "min_notional": "min_notional",
    "max_qty": "max_qty",
    "quote": "quote_coin",
    "base": "base_coin",
    "funding_interval": "funding_interval",
    "perpetual": "perpetual",
}
_REQUIRED = ("tick_size", "qty_step", "min_qty")
_TEXT_KEYS = ("quote", "base")
_FUNDING_KEYS = ("funding_interval", "perpetual")


def _funding_minutes(values: dict[str, str], below: InstrumentSpec | None) -> int:
    """``perpetual=false`` -> 0 (no funding); ``funding_interval=8h`` -> 480 (minutes)."""
    from replay.cards.schema import parse_duration  # the card's duration syntax

    perpetual = values.pop("perpetual", "true").lower()
    if perpetual not in ("true", "false", "yes", "no"):
        raise InputError(f"--instrument: perpetual={perpetual!r}: expected true or false")
    text = values.pop("funding_interval", "")
    if perpetual in ("false", "no"):
        return 0
    if not text:
        return below.funding_interval if below is not None else 480
    try:
        ms = parse_duration(text)
    except ValueError:
        ms = -1
    if ms < 60_000 or ms % 60_000:
        raise InputError(
            f"--instrument: funding_interval={text!r}: expected whole minutes such as 8h or 60m"
            " (perpetual=false for a market without funding)"
        )
    return ms // 60_000


def parse_instrument(text: str, symbol: str, below: InstrumentSpec | None) -> InstrumentSpec:
    """``--instrument KEY=VALUE,...`` as a spec; keys left out come from ``below``.

    Keys: tick_size, qty_step, min_qty, min_notional, max_qty (decimals), quote,
    base (currency names), funding_interval (a duration, 8h) and perpetual (false: no
    funding). Without ``below`` the first three are required.
    """
    values: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not value:
            raise InputError(f"--instrument: {item!r} is not KEY=VALUE (e.g. {_EXAMPLE})")
        if key not in _KEYS:
            close = difflib.get_close_matches(key, list(_KEYS), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise InputError(
                f"--instrument: unknown key {key!r} (expected one of {', '.join(_KEYS)}){hint}"
            )
        if key in values:
            raise InputError(f"--instrument: {key} given twice")
        if key in _FUNDING_KEYS:
            pass  # read by _funding_minutes
        elif key in _TEXT_KEYS:
            if not value.isalnum():
                raise InputError(f"--instrument: {key}={value!r} is not a currency name (e.g. USD)")
        else:
            try:
                d = Decimal(value)
            except InvalidOperation:
                d = Decimal("NaN")
            if not d.is_finite() or d < 0:
                raise InputError(
                    f"--instrument: {key}={value!r} is not a non-negative decimal (e.g. 0.01)"
                )
            value = f"{d:f}"
        values[key] = value
    if not values:
        raise InputError(f"--instrument is empty (e.g. {_EXAMPLE})")
    funding = _funding_minutes(values, below)
    if below is None:
        missing = [k for k in _REQUIRED if k not in values]
        if missing:
            raise InputError(
                f"--instrument: {symbol} has no built-in spec, so {', '.join(missing)}"
                f" must be given (e.g. {_EXAMPLE})"
            )
        fields: dict[str, str | int] = {"symbol": symbol}
    else:
        fields = {f: getattr(below, f) for f in below.__struct_fields__}
        fields["symbol"] = symbol
    fields.update({_KEYS[k]: v for k, v in values.items()})
    fields["funding_interval"] = funding
    return InstrumentSpec(**fields)  # type: ignore[arg-type]


def resolve(
    symbol: str,
    card_spec: InstrumentSpec | None,
    override: str | None,
    cache: InstrumentCache | None = None,
    notes: list[str] | None = None,
) -> Instrument:
    """The instrument a backtest uses: ``--instrument`` > the card's > the cache > built-in.

    A stale cache that supplied the spec adds its warning to ``notes``."""
    cached = cache.specs.get(symbol.upper()) if cache is not None else None
    below: InstrumentSpec | None
    if card_spec is not None:
        below, where = card_spec, "the card's instrument:"
    elif cached is not None:
        below, where = cached, f"the instruments cache {cache.path if cache else ''}"
        warning = cache.staleness() if cache is not None else ""
        if warning and notes is not None:
            notes.append(warning)
    else:
        below, where = KNOWN.get(symbol.upper()), "the built-in table"
    if override is not None:
        spec = parse_instrument(override, symbol, below)
        where = "--instrument"
    elif below is not None:
        spec = below
    else:
        raise InputError(unknown_symbol(symbol, cache))
    try:
        return Instrument(spec)
    except InstrumentError as exc:
        raise InputError(f"{where}: {exc}") from None
