"""The backtest fast path: the same log as the candle loop, with quiet candles in bulk.

``replay.session.run_backtest`` folds every candle through the venue, the engine
(``engine.core.step``) and the account view. Most candles of a typical backtest do
nothing: no order rests, no condition of the card can become true, so the fold only
moves the indicators, the condition memory, a few counters and the equity curve. For a
card whose whole per-bar state has an exact bulk form, this module finds those quiet
stretches from the whole series at once and puts the state at the end of each
stretch directly; every other candle goes through the loop's own ``fold_candle``.
The log is the same bytes (same events, seqs and fingerprint; candle bytes from
``adapters.historical.bulk``), which ``tests/test_fast_backtest.py`` checks for every
example card and for generated cards and data, and ``replay verify`` (the candle by
candle refold) passes on every fast session.

A card qualifies (``BulkRun.for_card``) when it runs on the execution timeframe only,
with SMA features of the close, stateful conditions that are only exact SMA-pair
crosses, no lags and no Python strategy, and every block needs a cross to fire. A
candle of such a card is folded for real when any of these holds: the card is warming
up; a block may fire on it (a cross is on, from ``exact_cross_states``); it completes a
checkpoint; an order rests or a timer, timeout or trailing stop is pending; it can
reach the liquidation price or crosses a funding time (at a rate that is not zero)
while a position is open; a daily loss limit is set while a position is open. A UTC
day that starts inside a quiet stretch is rolled there (``engine.risk.roll_day``).
Anything else falls back to the candle loop.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from adapters.historical.bulk import EncodedCandles, encode_candles
from adapters.historical.series import COLUMNS, CandleSeries
from engine.card import AllOf, AnyOf, Condition, Cross
from engine.conditions import exact_cross_states
from engine.core import _update_ctx
from engine.events import CandleClosed
from engine.indicators.averages import SMA
from engine.plan import CompiledPlan
from engine.risk import roll_day
from engine.state import DAY_MS, EngineState

if TYPE_CHECKING:
    from adapters.sim.venue import SimVenue
    from projections.account import AccountView
    from replay.cards import LoadedCard

I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]
Mask = npt.NDArray[np.bool_]
BATCH: Final = 8192  # as replay.session: flush the write buffer at this many records
_BLOCK: Final = 16_384  # rows whose likely candles are built together
_LIMIT: Final = 2**62  # int64 sums stay below this, or the card goes the candle loop


class _Bulk:
    """The bulk state of one card over one series, and the plan it is bound to."""

    def __init__(self, smas: list[SMA], crosses: list[tuple[I8, I8]], warm: int, fire: Mask):
        self.smas = smas
        self.crosses = crosses  # (last, d) after each warm bar, per exact cross
        self.warm = warm  # index of the first warm bar (the stateful conditions start there)
        self.fire = fire  # the bars a block may fire on

    def bind(self, plan: Any, card: LoadedCard) -> tuple[CompiledPlan, list[SMA], list[int]]:
        """Another plan of the same card: its SMAs and cross slots, in the same order."""
        smas = _smas(plan, card)
        assert isinstance(plan, CompiledPlan) and smas is not None, "another card's plan"
        slots = [k for _, _, last, d in plan._cond.crosses for k in (last, d)]
        assert len(slots) == 2 * len(self.crosses)
        return plan, list(smas.values()), slots


def _next_true(mask: Mask) -> npt.NDArray[np.int32]:
    """``out[k]``: the first index >= k where ``mask`` holds (``len(mask)`` if none); int32,
    half the memory of a series column (a series has fewer than 2**31 candles)."""
    n = len(mask)
    idx = np.where(mask, np.arange(n, dtype=np.int32), np.int32(n))
    return np.minimum.accumulate(idx[::-1])[::-1].copy()


def _smas(plan: Any, card: LoadedCard) -> dict[str, SMA] | None:
    """The plan's features by name when the fast path can follow it, else None."""
    if not isinstance(plan, CompiledPlan):
        return None
    if plan._python is not None or plan._resamplers or plan._lags.active:
        return None
    smas: dict[str, SMA] = {}
    for f, ind in zip(card.spec.features, plan._indicators, strict=True):
        if type(ind) is not SMA or ind._src != 0:
            return None
        smas[f.name] = ind
    cond = plan._cond
    if len(cond.updaters) != len(cond.crosses) or not smas:
        return None
    return smas


def _analyse(plan: Any, card: LoadedCard, close: I64) -> _Bulk | None:
    """The bulk state of ``plan`` over ``close`` and the bars a block may fire on."""
    smas = _smas(plan, card)
    if smas is None:
        return None
    n = len(close)
    longest = max(s.period for s in smas.values())
    warm = longest - 1
    if warm >= n or int(np.abs(close).max()) * longest**2 >= _LIMIT:
        return None
    totals = {id(s): SMA.totals(close, s.period) for s in smas.values()}
    crosses: list[tuple[I8, I8]] = []
    fires: dict[tuple[int, int, bool], Mask] = {}
    for sa, sb, _, _ in plan._cond.crosses:
        x = totals[id(sa)][warm:] * sb.divisor
        y = totals[id(sb)][warm:] * sa.divisor
        last, d = exact_cross_states(x, y)
        del x, y
        crosses.append((last.astype(np.int8), d.astype(np.int8)))
        for up in (True, False):
            if (id(sa), id(sb), up) not in fires:
                on = np.zeros(n, np.bool_)
                on[warm:] = d == (1 if up else -1)
                fires[(id(sa), id(sb), up)] = on
    del totals

    def may_fire(c: Condition) -> Mask | None:
        """A superset of the bars where ``c`` can hold; None: any bar."""
        if isinstance(c, Cross):
            a, b = smas.get(str(c.a).strip()), smas.get(str(c.b).strip())
            if a is None or b is None:
                return None
            return fires.get((id(a), id(b), c.up))
        if isinstance(c, AllOf):
            masks = [m for m in map(may_fire, c.items) if m is not None]
            return np.logical_and.reduce(masks) if masks else None
        if isinstance(c, AnyOf):
            got = [may_fire(i) for i in c.items]
            masks = [m for m in got if m is not None]
            if not got or len(masks) != len(got):
                return None
            return np.logical_or.reduce(masks)
        return None  # stateless (comparisons, position state, expressions): any bar

    fire = np.zeros(n, np.bool_)
    for block in card.spec.blocks:
        m = may_fire(block.when)
        if m is None:
            return None
        fire |= m
    # The first candle, the first warm one and the one after go through the loop; the
    # warm-up between is quiet (the features fill, the conditions have not started).
    fire[0] = True
    fire[warm : warm + 2] = True
    return _Bulk(list(smas.values()), crosses, warm, fire)


class BulkRun:
    """A series prepared for ``run_backtest(..., bulk=...)`` (see the module doc)."""

    def __init__(
        self,
        series: CandleSeries,
        card: LoadedCard,
        bulk: _Bulk,
        encoded: EncodedCandles | None = None,
    ) -> None:
        self.series = series
        self.encoded = encoded  # the series' candle bytes, shared by runs (None: encode)
        self.card = card
        self.bulk = bulk
        day = series.close_ms // DAY_MS
        # The first candle of each UTC day (a stretch rolls the day in bulk).
        self._day_starts: list[int] = [0, *(np.flatnonzero(day[1:] != day[:-1]) + 1).tolist()]
        active = bulk.fire
        self._next_active = _next_true(active)
        # The candles the loop will most likely fold: active ones and the one after each
        # (an order placed on a signal bar fills on the next), built a block at a time.
        likely = active.copy()
        likely[1:] |= active[:-1]
        self._likely = likely
        self._candles: dict[int, CandleClosed] = {}
        self._block = -1
        self._funding: dict[int, npt.NDArray[np.int32]] = {}
        self.n = len(series)

    @classmethod
    def for_card(
        cls, card: LoadedCard, series: CandleSeries, encoded: EncodedCandles | None = None
    ) -> BulkRun | None:
        """The fast path for ``card`` over ``series``, or None when the card (or the data)
        needs the candle loop. ``encoded``: ``series``' candle bytes, kept by the caller
        across runs over the same series (``adapters.historical.bulk.KeptEncodedCandles``)."""
        n = len(series)
        if n < 2 or series.timeframe != card.timeframe:
            return None
        if not bool(np.all(series.close_ms[1:] > series.close_ms[:-1])):
            return None  # the loop's venue names the bad candle
        bulk = _analyse(card.new_strategy(series.instrument), card, series.close)
        return None if bulk is None else cls(series, card, bulk, encoded)

    def _candle(self, i: int) -> CandleClosed:
        block = i // _BLOCK
        if block != self._block:  # the likely candles of the next block, in one go
            lo = block * _BLOCK
            at = lo + np.flatnonzero(self._likely[lo : lo + _BLOCK])
            cols = [self.series.columns()[name][at].tolist() for name in COLUMNS]
            sym, tf = self.series.symbol, self.series.timeframe
            self._candles = {
                k: CandleClosed(c_ms, sym, tf, o_ms, c_ms, o, h, lw, c, v, t, False)
                for k, o_ms, c_ms, o, h, lw, c, v, t in zip(at.tolist(), *cols)
            }
            self._block = block
        got = self._candles.get(i)
        if got is not None:
            return got
        s = self.series
        o_ms, c_ms, o, h, lw, c, v, t = (int(s.columns()[name][i]) for name in COLUMNS)
        return CandleClosed(c_ms, s.symbol, s.timeframe, o_ms, c_ms, o, h, lw, c, v, t, False)

    def _funding_bars(self, interval: int) -> npt.NDArray[np.int32]:
        got = self._funding.get(interval)
        if got is None:
            slot = self.series.close_ms // interval
            mask = np.zeros(self.n, np.bool_)
            mask[1:] = slot[1:] != slot[:-1]
            got = self._funding[interval] = _next_true(mask)
        return got

    def run(
        self,
        state: EngineState,
        venue: SimVenue,
        view: AccountView,
        buf: list[bytes],
        fold_candle: Callable[[CandleClosed, bytes | None], None],
        flush: Callable[[], None],
        stop: Any,
        progress: Callable[[int], None] | None,
        progress_every: int = 10_000,
    ) -> tuple[int, int]:
        """Fold every candle (or until ``stop.signal``); return (candles, last candle ts)."""
        plan, smas, cross_slots = self.bulk.bind(state.strategy, self.card)
        s = self.series
        enc = self.encoded if self.encoded is not None else encode_candles(s)
        lo, h, cm = s.low, s.high, s.close_ms
        n = self.n
        next_active = self._next_active
        warm = self.bulk.warm
        limit_set = state.config.risk.daily_loss_limit_pct > 0
        # A settlement at a zero rate pays nothing (the venue skips it): funding times then
        # do not end a stretch.
        funding = venue.config
        pays = funding.funding_rate_e8 != 0 or any(rate for _, rate in funding.funding_series)
        interval = venue.funding_interval_ms if pays else 0
        reported = 0
        i = 0
        view.bulk_curve(s.close_ms, s.open, s.high, s.low, s.close, s.volume)
        try:
            while i < n:
                end = i
                if (
                    (plan._warm or i < warm)
                    and not venue.orders
                    and not state.book.open
                    and not state.timers
                    and not state.timeouts
                    and not state.trail
                    and not state.plans
                    and not (limit_set and state.position.qty)
                ):
                    end = int(next_active[i])
                    if state.next_checkpoint > 0:
                        end = min(end, i + state.next_checkpoint - state.folded - 1)
                    q = venue.position.qty
                    if q and end > i:
                        lp = venue.liq_price()
                        if q < 0 or lp > 0:
                            reach = (lo[i:end] <= lp) if q > 0 else (h[i:end] >= lp)
                            first = int(reach.argmax())
                            if reach[first]:
                                end = i + first
                        if interval > 0 and end > i:
                            end = min(end, int(self._funding_bars(interval)[i]))
                if end > i:
                    self._skip(plan, smas, cross_slots, state, venue, view, buf, enc, i, end)
                    i = end
                else:
                    fold_candle(self._candle(i), enc.row(i))
                    i += 1
                if len(buf) >= BATCH:
                    flush()
                if progress is not None and i // progress_every > reported:
                    reported = i // progress_every
                    progress(i)
                if stop.signal:
                    break
        finally:
            view.end_bulk()  # the curve's rows, in bulk
        self._candles, self._block = {}, -1
        return i, int(cm[i - 1])

    def _skip(
        self,
        plan: CompiledPlan,
        smas: list[SMA],
        cross_slots: list[int],
        state: EngineState,
        venue: SimVenue,
        view: AccountView,
        buf: list[bytes],
        enc: EncodedCandles,
        i: int,
        j: int,
    ) -> None:
        """Candles ``i`` .. ``j - 1``, none of which changes anything but the bar state."""
        k = j - 1
        count = j - i
        s = self.series
        buf += enc.rows(i, j)
        closes = s.close[max(0, j - self.bulk.warm - 1) : j].tolist()  # the longest period's
        ts, close = int(s.close_ms[k]), closes[-1]
        view.mark_quiet(count, ts, close)
        # engine.core.step on a quiet candle, count times
        if ts >= state.next_day_ms:  # a UTC day starts in the stretch: the last start's
            starts = self._day_starts  # roll is the one that stays (engine.risk.roll_day)
            day = starts[bisect_right(starts, k) - 1]
            state.ts = int(s.close_ms[day])
            state.account.marks[state.symbol] = int(s.close[day - 1])  # the close before it
            roll_day(state)
            state.ctx_dirty = True
        state.ts = ts
        state.last_close = state.account.marks[state.symbol] = close
        state.bars += count
        if state.position.qty:
            state.bars_in_trade += count
            _update_ctx(state)
        elif state.ctx_dirty:
            _update_ctx(state)
        ctx = state.ctx
        ctx.bars_since_exit = state.bars - state.last_exit_bar
        ctx.trades_today = state.trades_today
        ctx.adds_in_trade = state.adds_in_trade if state.position.qty else 0
        state.folded += count
        # the venue's on_candle with nothing to do
        venue.last_price = close
        venue.last_close_ms = ts
        # the plan's on_candle: indicators, then the condition memory
        for sma in smas:  # ``closes`` holds the last min(j, longest period) closes
            sma.seek(closes[-sma.period :], j)
        w = k - self.bulk.warm
        if w < 0:  # in the warm-up: the condition memory has not started
            return
        slots = plan._cond.slots
        slots[0] += count
        for x, (last, d) in enumerate(self.bulk.crosses):
            slots[cross_slots[2 * x]] = int(last[w])
            slots[cross_slots[2 * x + 1]] = int(d[w])
