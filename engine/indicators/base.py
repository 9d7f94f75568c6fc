"""The indicator contract, parameter specs, price sources and the error type.

Every indicator consumes one closed candle per ``update(ts, o, h, l, c, v)``: prices
in integer ticks, volume in integer lots, ``ts`` the candle's close time in ms. It
exposes ``ready`` (warm), ``value`` (its first output, **NaN until ready**) and, for
multi-output indicators, ``get(name)``. Float outputs are in ticks (prices), lots
(volume) or plain numbers (RSI, ROC, widths).

State is captured by ``snapshot()`` as msgspec-encodable builtins (a list: the class
name, then ints, floats, bools and nested lists) and put back by ``restore()`` on an
indicator built with the same parameters; a restored indicator fed the same candles
produces bit-identical floats, because every float is computed in one fixed order
from the same stored state. (JSON turns NaN into null; ``restore`` accepts that.)
"""

from __future__ import annotations

import difflib
import math
from typing import Any, ClassVar, Final

import msgspec

NAN: Final = math.nan

# Price sources. Each is an *integer* in units of 1/scale tick, so integer indicators
# (SMA, WMA, highest, ...) stay exact: hl2 is h + l with scale 2, and so on.
SOURCES: Final = ("close", "open", "high", "low", "hl2", "hlc3", "ohlc4", "volume")
SRC_CLOSE: Final = 0
SRC_OPEN: Final = 1
SRC_HIGH: Final = 2
SRC_LOW: Final = 3
SRC_HL2: Final = 4
SRC_HLC3: Final = 5
SRC_OHLC4: Final = 6
SRC_VOLUME: Final = 7
UNITS: Final = ("source", "price", "bars", "scalar")
_SCALES: Final = (1, 1, 1, 1, 2, 3, 4, 1)


class IndicatorError(ValueError):
    """A bad indicator name, parameter, or snapshot; says which and suggests a fix."""

    def __init__(
        self,
        message: str,
        *,
        indicator: str = "",
        param: str = "",
        value: Any = None,
        suggestion: str = "",
    ) -> None:
        text = f"{message} -- did you mean {suggestion!r}?" if suggestion else message
        super().__init__(text)
        self.indicator = indicator
        self.param = param
        self.value = value
        self.suggestion = suggestion


def source_code(name: str) -> int:
    """The integer code of a source name (index into ``SOURCES``); IndicatorError if unknown."""
    try:
        return SOURCES.index(name)
    except ValueError:
        raise IndicatorError(
            f"unknown source {name!r}; expected one of {', '.join(SOURCES)}",
            param="source",
            value=name,
        ) from None


def source_scale(code: int) -> int:
    """How many source units make one tick (2 for hl2: the source value is h + l)."""
    return _SCALES[code]


def source_int(code: int, o: int, h: int, l: int, c: int, v: int) -> int:  # noqa: E741
    """The scaled integer source value of one candle (divide by ``source_scale`` for ticks)."""
    if code == SRC_CLOSE:
        return c
    if code == SRC_HLC3:
        return h + l + c
    if code == SRC_HL2:
        return h + l
    if code == SRC_HIGH:
        return h
    if code == SRC_LOW:
        return l
    if code == SRC_OPEN:
        return o
    if code == SRC_OHLC4:
        return o + h + l + c
    return v


class Param(msgspec.Struct, frozen=True):
    """One constructor parameter: its type, default and allowed values (inclusive range)."""

    name: str
    kind: type
    default: Any
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()
    doc: str = ""

    def check(self, indicator: str, value: Any) -> None:
        """Raise IndicatorError naming the indicator, the parameter and the value if bad."""
        if self.kind is float:
            ok_type = isinstance(value, int | float) and not isinstance(value, bool)
        else:
            ok_type = isinstance(value, self.kind) and not (
                self.kind is int and isinstance(value, bool)
            )
        if not ok_type:
            raise IndicatorError(
                f"{indicator}: parameter {self.name!r} must be {self.kind.__name__}, got {value!r}",
                indicator=indicator,
                param=self.name,
                value=value,
            )
        if self.choices and value not in self.choices:
            close = difflib.get_close_matches(str(value), self.choices, n=1)
            raise IndicatorError(
                f"{indicator}: parameter {self.name!r} is {value!r}; "
                f"expected one of {', '.join(self.choices)}",
                indicator=indicator,
                param=self.name,
                value=value,
                suggestion=close[0] if close else "",
            )
        if isinstance(value, int | float) and (
            (self.lo is not None and value < self.lo)
            or (self.hi is not None and value > self.hi)
            or (isinstance(value, float) and not math.isfinite(value))
        ):
            raise IndicatorError(
                f"{indicator}: parameter {self.name!r} is {value!r}; "
                f"expected a value in [{self.lo}, {self.hi}]",
                indicator=indicator,
                param=self.name,
                value=value,
            )


def period_param(default: int, lo: int = 1, doc: str = "bars in the window") -> Param:
    """The common ``period`` parameter."""
    return Param("period", int, default, lo=lo, hi=100_000, doc=doc)


def source_param(default: str = "close") -> Param:
    """The common ``source`` parameter."""
    return Param("source", str, default, choices=SOURCES, doc="price source")


class Stateful:
    """Something whose whole state is a fixed list of slots, saved in order.

    ``_state`` names the slots; list slots are fixed-size buffers restored in place,
    ``Stateful`` slots nest, everything else is a scalar (int, float, bool).
    """

    __slots__ = ()
    _state: ClassVar[tuple[str, ...]] = ()

    def snapshot(self) -> list[Any]:
        """The state as msgspec-encodable builtins (ints, floats, bools, lists)."""
        out: list[Any] = [type(self).__name__]
        for name in self._state:
            cur = getattr(self, name)
            if isinstance(cur, list):
                out.append(list(cur))
            elif isinstance(cur, Stateful):
                out.append(cur.snapshot())
            else:
                out.append(cur)
        return out

    def restore(self, state: Any) -> None:
        """Inverse of ``snapshot``; IndicatorError if the state is not this object's shape."""
        cls = type(self).__name__
        if not isinstance(state, list) or len(state) != len(self._state) + 1 or state[0] != cls:
            raise IndicatorError(f"{cls}: snapshot does not match this indicator", value=state)
        for name, saved in zip(self._state, state[1:]):
            cur = getattr(self, name)
            if isinstance(cur, list):
                if not isinstance(saved, list) or len(saved) != len(cur):
                    raise IndicatorError(
                        f"{cls}: snapshot buffer {name!r} has the wrong size", value=saved
                    )
                cur[:] = saved
            elif isinstance(cur, Stateful):
                cur.restore(saved)
            elif isinstance(cur, float):
                # JSON has no NaN (msgspec writes null): accept it back as NaN.
                setattr(self, name, NAN if saved is None else float(saved))
            elif isinstance(cur, bool):
                setattr(self, name, bool(saved))
            else:
                setattr(self, name, int(saved))


class Indicator(Stateful):
    """Base of every indicator: ``ready``, ``value`` and the ``update``/``get`` contract."""

    __slots__ = ("ready", "value", "warmup")
    name: ClassVar[str] = ""
    doc: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    outputs: ClassVar[tuple[str, ...]] = ("value",)
    # Per output: "source" (ticks, or lots for the volume source), "price" (ticks),
    # "bars" (a count of candles) or "scalar" (a plain number such as RSI).
    units: ClassVar[tuple[str, ...]] = ("source",)

    ready: bool
    value: int | float  # float for the built-ins; so compiled callers pass it on unconverted
    warmup: int  # candles after which ``ready`` becomes True (a lower bound for swing)

    def __init__(self, warmup: int) -> None:
        self.ready = False
        self.value = NAN
        self.warmup = warmup

    def _check(self, **values: Any) -> None:
        """Validate constructor arguments against ``params`` (IndicatorError if bad)."""
        specs = {p.name: p for p in self.params}
        for key, val in values.items():
            specs[key].check(self.name, val)

    def update(self, ts: int, o: int, h: int, l: int, c: int, v: int) -> None:  # noqa: E741
        """Consume one closed candle."""
        raise NotImplementedError

    def get(self, name: str) -> int | float:
        """The named output (``value`` for single-output indicators)."""
        if name == self.outputs[0] or name == "value":
            return self.value
        raise IndicatorError(
            f"{self.name} has no output {name!r}; outputs: {', '.join(self.outputs)}",
            indicator=self.name,
            param=name,
        )
