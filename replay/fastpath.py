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
up; a block may fire on it (a cross is on, from ``exact_cross_states``); it starts a
UTC day; it completes a checkpoint; an order rests or a timer, timeout or trailing
stop is pending; it can reach the liquidation price or crosses a funding time while a
position is open; a daily loss limit is set while a position is open. Anything else
falls back to the candle loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from adapters.historical.bulk import EncodedCandles, encode_candles
from adapters.historical.series import CandleSeries
from engine.card import AllOf, AnyOf, Condition, Cross
from engine.conditions import exact_cross_states
from engine.core import _update_ctx
from engine.events import CandleClosed
from engine.indicators.averages import SMA
from engine.plan import CompiledPlan
from engine.state import DAY_MS, EngineState

if TYPE_CHECKING:
    from adapters.sim.venue import SimVenue
    from projections.account import AccountView
    from replay.cards import LoadedCard

I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
BATCH: Final = 8192  # as replay.session: flush the write buffer at this many records
_LIMIT: Final = 2**62  # int64 sums stay below this, or the card goes the candle loop


class _Cross:
    __slots__ = ("d", "d_slot", "last", "last_slot")

    def __init__(self, last: I64, d: I64, last_slot: int, d_slot: int) -> None:
        self.last, self.d, self.last_slot, self.d_slot = last, d, last_slot, d_slot


class _Bulk:
    """What the fast path knows about one compiled plan over one series."""

    def __init__(self, plan: CompiledPlan, smas: list[SMA], crosses: list[_Cross], warm: int):
        self.plan = plan
        self.smas = smas
        self.crosses = crosses
        self.warm = warm  # index of the first warm bar (the stateful conditions start there)


def _next_true(mask: Mask) -> I64:
    """``out[k]``: the first index >= k where ``mask`` holds (``len(mask)`` if none)."""
    n = len(mask)
    idx = np.where(mask, np.arange(n), n)
    return np.minimum.accumulate(idx[::-1])[::-1].copy()


def _analyse(plan: Any, card: LoadedCard, close: I64) -> tuple[_Bulk, Mask] | None:
    """The bulk state of ``plan`` over ``close`` and the bars a block may fire on."""
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
    n = len(close)
    warm = max(s.period for s in smas.values()) - 1
    if warm >= n or int(np.abs(close).max()) * max(s.period for s in smas.values()) ** 2 >= _LIMIT:
        return None
    totals = {id(s): SMA.totals(close, s.period) for s in smas.values()}
    crosses: list[_Cross] = []
    fires: dict[tuple[int, int, bool], Mask] = {}
    for sa, sb, last_slot, d_slot in cond.crosses:
        x = totals[id(sa)][warm:] * sb.divisor
        y = totals[id(sb)][warm:] * sa.divisor
        last, d = exact_cross_states(x, y)
        crosses.append(_Cross(last, d, last_slot, d_slot))
        for up in (True, False):
            on = np.zeros(n, np.bool_)
            on[warm:] = d == (1 if up else -1)
            fires.setdefault((id(sa), id(sb), up), on)

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
    return _Bulk(plan, list(smas.values()), crosses, warm), fire


class BulkRun:
    """A series prepared for ``run_backtest(..., bulk=...)`` (see the module doc)."""

    def __init__(self, series: CandleSeries, card: LoadedCard, fire: Mask) -> None:
        self.series = series
        self.card = card
        n = len(series)
        close_ms = series.close_ms
        day = close_ms // DAY_MS
        active = fire.copy()
        active[1:] |= day[1:] != day[:-1]
        self._active = active
        self._next_active = _next_true(active)
        self._encoded: EncodedCandles | None = None
        self._funding: dict[int, I64] = {}
        # Python ints: a quiet stretch is short, and list slices beat numpy calls there.
        self._closes: list[int] = series.close.tolist()
        self._close_ms: list[int] = series.close_ms.tolist()
        self.n = n

    @classmethod
    def for_card(cls, card: LoadedCard, series: CandleSeries) -> BulkRun | None:
        """The fast path for ``card`` over ``series``, or None when the card (or the data)
        needs the candle loop."""
        n = len(series)
        if n < 2 or series.timeframe != card.timeframe:
            return None
        if not bool(np.all(series.close_ms[1:] > series.close_ms[:-1])):
            return None  # the loop's venue names the bad candle
        got = _analyse(card.new_strategy(series.instrument), card, series.close)
        if got is None:
            return None
        _, fire = got
        fire[: got[0].warm + 2] = True  # the warm-up goes through the loop
        return cls(series, card, fire)

    def _funding_bars(self, interval: int) -> I64:
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
        got = _analyse(state.strategy, self.card, self.series.close)
        assert got is not None, "BulkRun.run on another card's state"
        bulk = got[0]
        s = self.series
        if self._encoded is None:
            self._encoded = encode_candles(s)
        enc = self._encoded
        om, cm = s.open_ms, s.close_ms
        o, h, lo, c, v, t = s.open, s.high, s.low, s.close, s.volume, s.turnover
        symbol, tf, n = s.symbol, s.timeframe, self.n
        next_active = self._next_active
        limit_set = state.config.risk.daily_loss_limit_pct > 0
        slots = bulk.plan._cond.slots
        reported = 0
        i = 0
        while i < n:
            end = i
            if (
                bulk.plan._warm
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
                    interval = venue.config.funding_interval_ms
                    if interval > 0 and end > i:
                        end = min(end, int(self._funding_bars(interval)[i]))
            if end > i:
                self._skip(bulk, state, venue, view, buf, i, end)
                i = end
            else:
                candle = CandleClosed(
                    int(cm[i]),
                    symbol,
                    tf,
                    int(om[i]),
                    int(cm[i]),
                    int(o[i]),
                    int(h[i]),
                    int(lo[i]),
                    int(c[i]),
                    int(v[i]),
                    int(t[i]),
                    False,
                )
                fold_candle(candle, enc.data[enc.starts[i] : enc.starts[i + 1]])
                i += 1
            if len(buf) >= BATCH:
                flush()
            if progress is not None and i // progress_every > reported:
                reported = i // progress_every
                progress(i)
            if stop.signal:
                break
        del slots
        return i, int(cm[i - 1])

    def _skip(
        self,
        bulk: _Bulk,
        state: EngineState,
        venue: SimVenue,
        view: AccountView,
        buf: list[bytes],
        i: int,
        j: int,
    ) -> None:
        """Candles ``i`` .. ``j - 1``, none of which changes anything but the bar state."""
        assert self._encoded is not None
        k = j - 1
        count = j - i
        buf.extend(self._encoded.rows(i, j))
        closes = self._closes
        view.mark_many(self._close_ms[i:j], closes[i:j])
        ts, close = self._close_ms[k], closes[k]
        # engine.core.step on a quiet candle, count times
        state.ts = ts
        state.last_close = close
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
        # the plan's on_candle: indicators, then the condition memory
        for sma in bulk.smas:
            sma.seek(closes[max(0, j - sma.period) : j], j)
        slots = bulk.plan._cond.slots
        slots[0] += count
        w = k - bulk.warm
        for x in bulk.crosses:
            slots[x.last_slot] = int(x.last[w])
            slots[x.d_slot] = int(x.d[w])
        # the venue's on_candle with nothing to do
        venue.last_price = close
        venue.last_close_ms = ts
