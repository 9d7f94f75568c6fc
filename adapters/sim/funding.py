"""Funding settlement times and rates of the simulated venue.

Settlements happen at whole multiples of ``funding_interval_ms`` since the Unix epoch
(00:00, 08:00, 16:00 UTC for 8 h). A candle settles every such time ``T`` with
``previous close_ms < T <= close_ms`` (for the first candle: ``open_ms <= T``), so it
works whether a venue stamps a 1m bar's close as ``open + 60000`` or ``open + 59999``.
"""

from __future__ import annotations

from bisect import bisect_right

from adapters.sim.config import SimConfig
from engine.instrument import Instrument


def interval_ms(instrument: Instrument, config: SimConfig) -> int:
    """Funding interval in ms: 0 when the instrument is not a perpetual; else the card's
    ``sim.funding_interval`` if it sets one, else the instrument's ``fundingInterval``."""
    if instrument.funding_interval_ms == 0:
        return 0
    if config.funding_interval_ms is not None:
        return config.funding_interval_ms
    return instrument.funding_interval_ms


def funding_times(after_ms: int, upto_ms: int, interval_ms: int) -> list[int]:
    """Settlement times ``T`` with ``after_ms < T <= upto_ms`` (empty if disabled)."""
    if interval_ms <= 0 or upto_ms <= after_ms:
        return []
    first = (after_ms // interval_ms + 1) * interval_ms
    return list(range(first, upto_ms + 1, interval_ms))


class FundingSchedule:
    """The rate (1e-8) in force at a settlement time.

    With a ``funding_series`` the rate at ``T`` is the series entry at or before ``T``
    (the constant ``funding_rate_e8`` before the first entry); without one it is the
    constant.
    """

    __slots__ = ("_constant", "_times", "_rates")

    def __init__(self, config: SimConfig) -> None:
        series = sorted(config.funding_series)
        self._constant = config.funding_rate_e8
        self._times = [t for t, _ in series]
        self._rates = [r for _, r in series]

    def rate_at(self, ts: int) -> int:
        i = bisect_right(self._times, ts)
        return self._rates[i - 1] if i else self._constant
