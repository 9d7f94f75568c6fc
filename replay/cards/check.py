"""Is a card valid *for a run*: the one check behind ``replay check`` and
``python -m replay.cards``, so the two never disagree with ``replay run``.

A card is valid when it loads (schema, names, params with ``--set`` applied, the
strategy class imports) *and* its symbol has an instrument by the run's precedence:
``--instrument`` > the card's ``instrument:`` > the store's instruments cache > the
built-in table (``replay.instruments.resolve``). The message of a refusal is the one
``replay run`` prints for the same card.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from replay.cards.errors import IdeaCardError
from replay.cards.loader import load_card
from replay.cards.params import format_params
from replay.errors import InputError
from replay.instrument_cache import load_cache
from replay.instruments import resolve


class CardCheck(msgspec.Struct, frozen=True, kw_only=True):
    """One card's verdict; ``error`` is "" when it is valid."""

    path: str
    ok: bool
    error: str = ""
    name: str = ""
    symbol: str = ""
    timeframe: str = ""
    higher: list[str] = []
    features: int = 0
    blocks: int = 0
    strategy_class: str = ""
    params: dict[str, int | float] = {}
    instrument: dict[str, str] = {}
    warnings: list[str] = []

    def line(self) -> str:
        """``OK path: ...`` or ``ERROR message`` (the run's message, after the card's path
        when the message does not begin with it)."""
        if not self.ok:
            where = "" if self.error.startswith(self.path) else f"{self.path}: "
            return f"ERROR {where}{self.error}"
        tick = self.instrument.get("tick_size", "")
        quote = self.instrument.get("quote_coin", "")
        return (
            f"OK {self.path}: {self.name or '-'} {self.symbol} {self.timeframe}"
            f"{' +' + ','.join(self.higher) if self.higher else ''}, "
            f"{self.features} features, {self.blocks} blocks"
            f"{', python ' + self.strategy_class if self.strategy_class else ''}"
            f"{', params ' + format_params(self.params) if self.params else ''}"
            f", tick {tick} {quote}"
        )

    def as_json(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)


def check_card(
    path: str | Path,
    overrides: dict[str, str] | None = None,
    *,
    store: Path | None = None,
    instrument: str | None = None,
    timeframe: str | None = None,
) -> CardCheck:
    """Load ``path`` as ``replay run`` would and resolve its instrument the same way."""
    where = str(path)
    try:
        card = load_card(path, overrides, timeframe=timeframe)
    except IdeaCardError as exc:
        return CardCheck(path=where, ok=False, error=str(exc))
    warnings: list[str] = []
    try:
        inst = resolve(card.symbol, card.instrument, instrument, load_cache(store), warnings)
    except InputError as exc:
        return CardCheck(path=where, ok=False, error=str(exc), symbol=card.symbol)
    spec = card.spec
    return CardCheck(
        path=where,
        ok=True,
        name=spec.name or "",
        symbol=card.symbol,
        timeframe=card.timeframe,
        higher=list(spec.higher),
        features=len(spec.features),
        blocks=len(spec.blocks),
        strategy_class=spec.strategy_class or "",
        params=dict(card.params),
        instrument=msgspec.structs.asdict(inst.spec),
        warnings=warnings,
    )
