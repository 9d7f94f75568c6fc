"""At daemon start: the card's ``sim.leverage`` and ``sim.margin_mode`` set on the venue.

The venue's answers are logged; if it refuses, the daemon refuses to trade (exit 2 with the
venue's answer), since the account would then margin and liquidate unlike the backtest.
"""

from __future__ import annotations

import logging
from typing import Any

from adapters.bybit.errors import BybitError
from adapters.bybit.margin import apply_margin
from replay.cards import LoadedCard
from replay.errors import InputError

log = logging.getLogger("replay.daemon")


class MarginRefused(InputError):
    """The venue would not take the card's margin settings: nothing is traded."""


async def set_card_margin(venue: Any, card: LoadedCard) -> list[str]:
    """Apply the card's margin leverage and mode to ``venue`` (a ``BybitVenue``)."""
    sim = card.sim_config
    try:
        answers = await apply_margin(
            venue.rest, venue.config.category, card.symbol, sim.leverage, sim.margin_mode
        )
    except BybitError as exc:
        raise MarginRefused(
            f"the venue did not take the card's margin settings (sim.leverage "
            f"{sim.leverage}, sim.margin_mode {sim.margin_mode}): {exc}; nothing was traded"
        ) from None
    for line in answers:
        log.info("venue margin: %s", line)
    return answers
