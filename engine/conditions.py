"""Card conditions compiled into closures, with the state of stateful ones kept in one list.

Stateless conditions (comparisons, all/any/not, position state, boolean expressions)
are evaluated on demand, short-circuited, when a block is tried. Stateful ones (crosses,
``held``, ``within``) must see *every* bar whether or not an earlier block matched, so
each registers an updater that ``CondState.update`` runs once per bar, in a fixed order
(inner conditions before the ones that contain them), storing its result in a slot;
the compiled condition only reads that slot.

All their memory is one list of ints (``CondState.slots``): the engine snapshot captures
it with the rest of the strategy, so nobody has to remember to initialise a buffer.

Semantics:
* ``cross_above: [a, b]`` is true on the bar where ``a > b`` and the last bar on which
  ``a != b`` had ``a < b`` (a touch and bounce is not a cross). Two SMA features are
  compared exactly (integer sums); anything else as floats (NaN: no information).
* ``held: {for: N, cond: C}`` is true when C was true on each of the last N bars,
  this one included.
* ``within: {bars: N, first: A, then: B}`` is true when B is true now and A was true
  on this bar or one of the N bars before it.
Stateful conditions start counting once the strategy is warm.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

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

SignFn = Callable[[], int]
#: Given two operand names, an exact sign function (-1/0/1) or None to compare as floats.
ExactSign = Callable[[Operand, Operand], SignFn | None]

_NEVER: Final = -(2**62)  # "long ago" for within's last-seen bar


class CondState:
    """The slots and per-bar updaters of every stateful condition of one plan."""

    __slots__ = ("slots", "updaters")

    def __init__(self) -> None:
        self.slots: list[int] = [0]  # slot 0: bars seen since warm
        self.updaters: list[Callable[[], None]] = []

    def alloc(self, initial: int = 0) -> int:
        self.slots.append(initial)
        return len(self.slots) - 1

    def update(self) -> None:
        """Advance one bar: run every updater in registration order."""
        self.slots[0] += 1
        for u in self.updaters:
            u()

    def snapshot(self) -> list[int]:
        return list(self.slots)

    def restore(self, state: list[int]) -> None:
        if len(state) != len(self.slots):
            raise ValueError(f"condition state has {len(state)} slots, plan has {len(self.slots)}")
        self.slots[:] = state  # in place: the closures hold this list


def _float_sign(a: Callable[[], float], b: Callable[[], float]) -> SignFn:
    def sign() -> int:
        x = a()
        y = b()
        return 1 if x > y else (-1 if x < y else 0)

    return sign


class ConditionCompiler:
    """Compiles ``engine.card`` condition trees against one scope into one ``CondState``."""

    def __init__(self, scope: Scope, state: CondState, exact_sign: ExactSign) -> None:
        self.scope = scope
        self.state = state
        self.exact_sign = exact_sign

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
        sign = self.exact_sign(cond.a, cond.b)
        if sign is None:
            u = unit_of(cond.a, self.scope, cond.path) or unit_of(cond.b, self.scope, cond.path)
            fa, _ = compile_value(cond.a, self.scope, cond.path, u)
            fb, _ = compile_value(cond.b, self.scope, cond.path, u)
            sign = _float_sign(fa, fb)
        st = self.state.slots
        last = self.state.alloc(0)
        res = self.state.alloc(0)
        up = cond.up
        sgn = sign

        def update() -> None:
            s = sgn()
            if s == 0:
                st[res] = 0
                return
            prev = st[last]
            st[res] = 1 if (prev < 0 if s > 0 else prev > 0) and (s > 0) == up else 0
            st[last] = s

        self.state.updaters.append(update)
        return lambda: st[res] == 1

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
