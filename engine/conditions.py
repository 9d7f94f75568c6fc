"""Card conditions compiled into closures, with the state of stateful ones kept in one list.

Stateless conditions (comparisons, all/any/not, position state, boolean expressions)
are evaluated on demand, short-circuited, when a block is tried. Stateful ones (crosses,
``held``, ``within``) must see *every* bar whether or not an earlier block matched, so
each registers an updater that the plan runs once per warm bar (after bumping slot 0,
the bar counter), in a fixed order (inner conditions before the ones that contain
them), storing its result in a slot; the compiled condition only reads that slot.

All their memory is one list of ints (``CondState.slots``): the engine snapshot captures
it with the rest of the strategy, so nobody has to remember to initialise a buffer.

Semantics:
* ``cross_above: [a, b]`` is true on the bar where ``a > b`` and the last bar on which
  ``a != b`` had ``a < b`` (a touch and bounce is not a cross). Two SMA features of one
  timeframe are compared exactly, as ``engine.indicators.cross.sma_compare`` does
  (``a.total * b.divisor`` vs ``b.total * a.divisor``, inlined: this is the hot path);
  anything else as floats (NaN: no information). One updater serves both directions.
* ``held: {for: N, cond: C}`` is true when C was true on each of the last N bars,
  this one included.
* ``within: {bars: N, first: A, then: B}`` is true when B is true now and A was true
  on this bar or one of the N bars before it.
Stateful conditions start counting once the strategy is warm.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from engine.card import (
    AllOf,
    AnyOf,
    CardCompileError,
    Compare,
    Condition,
    Cross,
    Expr,
    Held,
    Not,
    Operand,
    PositionIs,
    Within,
)
from engine.expressions import (
    BOOL,
    BoolFn,
    Scope,
    all_of,
    any_of,
    compile_bool,
    compile_compare,
    compile_value,
    unit_of,
)

#: Given two operands, the pair of SMA objects to compare exactly, or None (floats).
ExactPair = Callable[[Operand, Operand], tuple[Any, Any] | None]

_NEVER: Final = -(2**62)  # "long ago" for within's last-seen bar


def exact_cross_states(
    x: npt.NDArray[np.int64], y: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The bulk form of the exact cross updater (``ConditionCompiler._pair_updater``): given
    ``a.total * b.divisor`` and ``b.total * a.divisor`` on consecutive warm bars from the
    first, the slots ``(last, d)`` after each bar. ``tests/test_fast_backtest.py`` holds it
    equal to the updater bar for bar: that is its contract."""
    s = (x > y).astype(np.int64) - (x < y).astype(np.int64)
    at = np.where(s != 0, np.arange(len(s)), -1)
    np.maximum.accumulate(at, out=at)
    last = np.where(at >= 0, s[np.maximum(at, 0)], 0)
    before = np.concatenate([np.zeros(1, np.int64), last[:-1]])
    d = np.where((s != 0) & (before == -s), s, 0)
    return last, d


class CondState:
    """The slots and per-bar updaters of every stateful condition of one plan."""

    __slots__ = ("crosses", "slots", "updaters")

    def __init__(self) -> None:
        self.slots: list[int] = [0]  # slot 0: bars seen since warm
        self.updaters: list[Callable[[], None]] = []
        # Exact SMA-pair crosses (a, b, slot of the last sign, slot of the cross), for the
        # bulk form ``exact_cross_states``.
        self.crosses: list[tuple[Any, Any, int, int]] = []

    def alloc(self, initial: int = 0) -> int:
        self.slots.append(initial)
        return len(self.slots) - 1

    def snapshot(self) -> list[int]:
        return list(self.slots)

    def restore(self, state: list[int]) -> None:
        if len(state) != len(self.slots):
            raise ValueError(f"condition state has {len(state)} slots, plan has {len(self.slots)}")
        self.slots[:] = state  # in place: the closures hold this list


class ConditionCompiler:
    """Compiles ``engine.card`` condition trees against one scope into one ``CondState``."""

    def __init__(self, scope: Scope, state: CondState, exact_pair: ExactPair) -> None:
        self.scope = scope
        self.state = state
        self.exact_pair = exact_pair
        self._pairs: dict[tuple[str, str], int] = {}  # (a, b) -> slot of the cross direction

    def compile(self, cond: Condition) -> BoolFn:
        if isinstance(cond, Compare):
            return compile_compare(cond.op, cond.left, cond.right, self.scope, cond.path)
        if isinstance(cond, AllOf):
            return all_of([self.compile(c) for c in cond.items])
        if isinstance(cond, AnyOf):
            return any_of([self.compile(c) for c in cond.items])
        if isinstance(cond, Not):
            f = self.compile(cond.item)
            return lambda: not f()
        if isinstance(cond, PositionIs):
            got = self.scope.names.get(cond.state)
            if got is None or got[1] != BOOL:
                raise CardCompileError(
                    cond.path, "unknown position state", cond.state, "flat, long or short"
                )
            return got[0]  # type: ignore[return-value]
        if isinstance(cond, Expr):
            return compile_bool(cond.text, self.scope, cond.path)
        if isinstance(cond, Cross):
            return self._cross(cond)
        if isinstance(cond, Held):
            return self._held(cond)
        if isinstance(cond, Within):
            return self._within(cond)
        raise TypeError(f"not a condition: {cond!r}")

    def _cross(self, cond: Cross) -> BoolFn:
        key = (repr(cond.a).strip(), repr(cond.b).strip())
        d = self._pairs.get(key)
        if d is None:  # one updater per pair, shared by cross_above and cross_below
            d = self._pair_updater(cond)
            self._pairs[key] = d
        st = self.state.slots
        if cond.up:
            return lambda: st[d] == 1
        return lambda: st[d] == -1

    def _pair_updater(self, cond: Cross) -> int:
        """Register the updater tracking a vs b; returns the slot holding +1/-1/0 (crossed)."""
        st = self.state.slots
        last = self.state.alloc(0)  # sign of a - b on the last bar where they differed
        d = self.state.alloc(0)
        pair = self.exact_pair(cond.a, cond.b)
        if pair is not None:
            sa, sb = pair
            da, db = sa.divisor, sb.divisor

            def update() -> None:
                x = sa.total * db
                y = sb.total * da
                if x == y:
                    st[d] = 0
                    return
                s = 1 if x > y else -1
                st[d] = s if st[last] == -s else 0
                st[last] = s

            self.state.crosses.append((sa, sb, last, d))
        else:
            u = unit_of(cond.a, self.scope, cond.path) or unit_of(cond.b, self.scope, cond.path)
            fa, _ = compile_value(cond.a, self.scope, cond.path, u)
            fb, _ = compile_value(cond.b, self.scope, cond.path, u)

            def update() -> None:
                x = fa()
                y = fb()
                if x > y:
                    s = 1
                elif x < y:
                    s = -1
                else:  # equal, or NaN: no information
                    st[d] = 0
                    return
                st[d] = s if st[last] == -s else 0
                st[last] = s

        self.state.updaters.append(update)
        return d

    def _held(self, cond: Held) -> BoolFn:
        inner = self.compile(cond.cond)
        st = self.state.slots
        count = self.state.alloc(0)
        n = cond.bars

        def update() -> None:
            st[count] = st[count] + 1 if inner() else 0

        self.state.updaters.append(update)
        return lambda: st[count] >= n

    def _within(self, cond: Within) -> BoolFn:
        first = self.compile(cond.first)
        then = self.compile(cond.then)
        st = self.state.slots
        seen = self.state.alloc(_NEVER)
        res = self.state.alloc(0)
        n = cond.bars

        def update() -> None:
            now = st[0]
            if first():
                st[seen] = now
            st[res] = 1 if (now - st[seen] <= n and then()) else 0

        self.state.updaters.append(update)
        return lambda: st[res] == 1
