"""The IdeaCard compiler: ``CardSpec`` + instrument -> ``CompiledPlan`` (a ``Strategy``).

Per closed execution candle the plan (1) feeds the candle to the execution-timeframe
indicators, (2) folds it into each slower timeframe's ``Resampler``, which feeds that
timeframe's indicators only on the candle closing a slow bar (no lookahead, forward
fill), (3) once every feature is warm, advances the stateful conditions, then (4) tries
the blocks in order and returns the intents of the first that matches (first match
wins; nothing when none does).

Units: inside the plan every price-like value is in ticks and every quantity in lots
(see engine/expressions.py for how card numbers are read). Intent prices and distances
are float ticks; the engine rounds them to the grid. An intent whose price-like field
evaluates to NaN or a non-positive value (an expression referencing something not yet
known) is dropped rather than sent half-formed.

The Python escape hatch: a card with ``strategy: {class: ..., params: {...}}`` builds
``cls(**params)`` once per session; after the blocks (if any) matched nothing, each
warm bar calls ``obj.on_bar(bar, ctx)`` with a ``Bar`` view (the candle and every
feature value) and the engine's ``MarketContext``; it returns a list of
``engine.events.Intent``. It runs inside the fold, so it must be deterministic: no
clock, no randomness, no I/O, no iteration over sets of strings; its whole state must
round-trip through ``snapshot()`` / ``restore(state)`` (msgspec builtins).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from decimal import ROUND_FLOOR, Decimal
from typing import Any, Final, Protocol

from engine.card import BlockSpec, CardCompileError, CardSpec, FeatureSpec, IntentSpec, Operand
from engine.conditions import ConditionCompiler, CondState
from engine.config import ExecutionDefaults
from engine.events import ACTIONS, BUY, SELL, CandleClosed, Intent
from engine.expressions import BOOL, PRICE, QTY, SCALAR, Scope, compile_value
from engine.indicators.averages import SMA
from engine.indicators.base import Indicator, IndicatorError
from engine.indicators.registry import INDICATORS, validate_params
from engine.instrument import Instrument
from engine.lags import Lags
from engine.strategy import MarketContext, StrategyError, describe_failure
from engine.timeframes import Resampler, tf_ms

#: Outputs that are plain numbers, not prices (everything else is a price, or a
#: quantity when the indicator's source is volume).
SCALAR_OUTPUTS: Final = frozenset(
    {
        ("rsi", "value"),
        ("roc", "value"),
        ("bollinger", "width"),
        ("swing", "high_ago"),
        ("swing", "low_ago"),
    }
)
_PRICES: Final = ("open", "high", "low", "close", "volume")


class Bar:
    """What a Python strategy sees each warm bar: the candle and every named value.

    ``features`` maps each feature name (and ``name.output`` for every output, and
    the slower timeframes' prices such as ``close_1h``) to its float value in ticks /
    lots / plain units; it is refreshed in place each bar (copy what you keep).
    """

    __slots__ = ("candle", "features", "index", "instrument")

    def __init__(self, instrument: Instrument) -> None:
        self.candle: CandleClosed | None = None
        self.features: dict[str, float] = {}
        self.index = 0  # warm bars so far, 1 on the first
        self.instrument = instrument


class PythonStrategy(Protocol):
    """The interface of ``strategy: {class: ...}`` (constructed as ``cls(**params)``)."""

    def on_bar(self, bar: Bar, ctx: MarketContext) -> list[Intent]:
        """Called once per warm execution bar when no block matched; return intents."""
        ...

    def snapshot(self) -> Any:
        """All mutable state as msgspec builtins."""
        ...

    def restore(self, state: Any) -> None:
        """Inverse of ``snapshot``."""
        ...


class _Box:
    """The current candle and context, read by the compiled closures."""

    __slots__ = ("c", "ctx")

    def __init__(self) -> None:
        self.c: Any = None
        self.ctx: MarketContext = MarketContext()


IntentMaker = Callable[[], Intent | None]


class CompiledPlan:
    """A compiled card: the ``Strategy`` the engine calls on every execution candle."""

    def __init__(
        self,
        spec: CardSpec,
        indicators: list[Indicator],
        exec_updates: list[Callable[[int, int, int, int, int, int], None]],
        resamplers: list[Resampler],
        cond: CondState,
        blocks: list[tuple[Callable[[], bool], list[IntentMaker]]],
        box: _Box,
        python: PythonStrategy | None,
        bar: Bar,
        feature_getters: list[tuple[str, Callable[[], float]]],
        scope: Scope,
        lags: Lags,
    ) -> None:
        self.spec = spec
        self._indicators = indicators
        self._exec_updates = exec_updates
        self._resamplers = resamplers
        self._cond = cond
        self._slots = cond.slots  # the same list object for the plan's whole life
        self._updaters = tuple(cond.updaters)
        self._blocks = blocks
        self._box = box
        self._python = python
        self._bar = bar
        self._feature_getters = feature_getters
        self._scope = scope
        self._lags = lags
        self._lagged = lags.active  # sealed: no lag is added after compiling
        self._warm = False

    def value(self, name: str) -> float:
        """The current value of any name a card expression may use (for tests and reports)."""
        got = self._scope.names.get(name)
        if got is None:
            raise KeyError(name)
        return float(got[0]())

    def is_warm(self) -> bool:
        """True once every feature is ready, every slow bar seen and every lag exists."""
        if self._warm:
            return True
        if not self._features_warm() or not self._lags.full:
            return False
        self._warm = True
        return True

    def _features_warm(self) -> bool:
        for ind in self._indicators:
            if not ind.ready:
                return False
        return all(r.bars != 0 for r in self._resamplers)

    def feed_features(
        self, ts: int, open_ms: int, close_ms: int, o: int, h: int, lo: int, c: int, v: int
    ) -> None:
        """Advance only the features by one execution candle (no blocks, no strategy): the
        report draws them from the log's candles. ``on_candle`` does the same first."""
        for upd in self._exec_updates:
            upd(ts, o, h, lo, c, v)
        for r in self._resamplers:
            r.update(open_ms, close_ms, o, h, lo, c, v)

    def feature_lines(self) -> list[tuple[str, str, Callable[[], float]]]:
        """(name, unit, getter) of every card feature output worth drawing: the feature
        itself for a one-output indicator, else each ``name.output``."""
        out: list[tuple[str, str, Callable[[], float]]] = []
        for f, ind in zip(self.spec.features, self._indicators, strict=True):
            names = [f.name] if len(ind.outputs) == 1 else [f"{f.name}.{o}" for o in ind.outputs]
            for name in names:
                getter, unit = self._scope.names[name]
                out.append((name, unit, getter))
        return out

    def on_candle(self, candle: CandleClosed, ctx: MarketContext) -> list[Intent]:
        box = self._box
        box.c = candle
        box.ctx = ctx
        ts = candle.ts
        o = candle.open
        h = candle.high
        lo = candle.low
        c = candle.close
        v = candle.volume
        for upd in self._exec_updates:
            upd(ts, o, h, lo, c, v)
        if self._resamplers:
            om = candle.open_ms
            cm = candle.close_ms
            for r in self._resamplers:
                r.update(om, cm, o, h, lo, c, v)
        if self._lagged:
            if not self._warm and not self._features_warm():
                return []
            self._lags.push()
        if not self._warm and not self.is_warm():
            return []
        slots = self._slots
        slots[0] += 1
        for u in self._updaters:
            u()
        for when, makers in self._blocks:
            if when():
                out = []
                for make in makers:
                    it = make()
                    if it is not None:
                        out.append(it)
                return out
        if self._python is not None:
            return self._call_python(candle, ctx)
        return []

    def _call_python(self, candle: CandleClosed, ctx: MarketContext) -> list[Intent]:
        bar = self._bar
        bar.candle = candle
        bar.index = self._cond.slots[0]
        feats = bar.features
        for name, g in self._feature_getters:
            feats[name] = float(g())
        assert self._python is not None
        try:
            out = list(self._python.on_bar(bar, ctx))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # the user's code, SystemExit included: say what it did
            name = f"{type(self._python).__name__}.on_bar"
            raise StrategyError(
                f"strategy {name} failed at candle {candle.ts}: {describe_failure(exc)}"
            ) from None
        for it in out:
            if type(it) is not Intent:
                raise TypeError(
                    f"{type(self._python).__name__}.on_bar returned {it!r}; "
                    "expected a list of engine.events.Intent"
                )
        return out

    def snapshot(self) -> Any:
        """Indicators, resamplers, condition slots, lag buffers and the Python strategy."""
        return [
            [ind.snapshot() for ind in self._indicators],
            [r.snapshot() for r in self._resamplers],
            self._cond.snapshot(),
            self._lags.snapshot(),
            None if self._python is None else self._python.snapshot(),
        ]

    def restore(self, state: Any) -> None:
        inds, rs, cond, lags, py = state
        for ind, s in zip(self._indicators, inds, strict=True):
            ind.restore(s)
        for r, s in zip(self._resamplers, rs, strict=True):
            r.restore(s)
        self._cond.restore(cond)
        self._lags.restore(lags)
        if self._python is not None:
            self._python.restore(py)
        self._warm = False
        self.is_warm()


# ----------------------------------------------------------------------- compiler


def feature_unit(indicator: str, output: str, params: dict[str, Any]) -> str:
    """The unit of one feature output (see ``SCALAR_OUTPUTS``)."""
    if (indicator, output) in SCALAR_OUTPUTS:
        return SCALAR
    if params.get("source") == "volume":
        return QTY
    return PRICE


def _build_indicator(f: FeatureSpec) -> Indicator:
    spec = INDICATORS.get(f.indicator)
    if spec is None:
        close = difflib.get_close_matches(f.indicator, list(INDICATORS), n=1, cutoff=0.5)
        raise CardCompileError(
            f"{f.path}.indicator",
            f"unknown indicator {f.indicator!r}",
            f.indicator,
            "one of " + ", ".join(INDICATORS),
            close[0] if close else "",
        )
    try:
        full = validate_params(f.indicator, dict(f.params))
        return spec.cls(**full)
    except IndicatorError as exc:
        param = exc.param or ""
        known = [p.name for p in spec.params]
        path = f"{f.path}.{param}" if param and param in f.params else f.path
        if param and param not in known:
            found: Any = param
            expected = (
                f"a parameter of {f.indicator} ({', '.join(known) or 'none'}), "
                "indicator or timeframe"
            )
            keys = [*known, "indicator", "timeframe"]
            close = difflib.get_close_matches(param, keys, n=1, cutoff=0.6)
            raise CardCompileError(
                path,
                f"unknown key {param!r} in feature {f.name!r}",
                found,
                expected,
                close[0] if close else "",
            ) from None
        else:
            found = exc.value if param else dict(f.params)
            expected = f"valid parameters for {f.indicator} ({', '.join(known) or 'none'})"
        message = str(exc).split(" -- did you mean")[0]
        raise CardCompileError(path, message, found, expected, exc.suggestion) from None
    except (TypeError, ValueError) as err:  # not `exc`: mypyc types it from the clause above
        raise CardCompileError(f.path, str(err), dict(f.params), "valid parameters") from None


def _feature_names(f: FeatureSpec, ind: Indicator) -> list[tuple[str, Callable[[], float], str]]:
    """(name, getter, unit) for the feature and each ``name.output``."""
    out: list[tuple[str, Callable[[], float], str]] = []
    first = ind.outputs[0]
    out.append((f.name, _value_getter(ind), feature_unit(f.indicator, first, f.params)))
    for o in ind.outputs:
        g = _value_getter(ind) if o == first else _output_getter(ind, o)
        out.append((f"{f.name}.{o}", g, feature_unit(f.indicator, o, f.params)))
    return out


def _value_getter(ind: Indicator) -> Callable[[], int | float]:
    return lambda: ind.value


def _output_getter(ind: Indicator, name: str) -> Callable[[], int | float]:
    get = ind.get
    return lambda: get(name)


def _attr_getter(obj: Any, attr: str) -> Callable[[], float]:
    if attr == "open":
        return lambda: obj.open
    if attr == "high":
        return lambda: obj.high
    if attr == "low":
        return lambda: obj.low
    if attr == "close":
        return lambda: obj.close
    return lambda: obj.volume


def _candle_getter(box: _Box, attr: str) -> Callable[[], float]:
    if attr == "open":
        return lambda: box.c.open
    if attr == "high":
        return lambda: box.c.high
    if attr == "low":
        return lambda: box.c.low
    if attr == "close":
        return lambda: box.c.close
    return lambda: box.c.volume


def _position_names(box: _Box) -> dict[str, tuple[Callable[[], Any], str]]:
    return {
        "flat": (lambda: box.ctx.position_qty == 0, BOOL),
        "long": (lambda: box.ctx.position_qty > 0, BOOL),
        "short": (lambda: box.ctx.position_qty < 0, BOOL),
        "pending": (lambda: box.ctx.open_orders > 0, BOOL),
        "position": (lambda: box.ctx.position_qty, QTY),
        "avg_entry": (lambda: box.ctx.avg_entry, PRICE),
        "bars_in_trade": (lambda: box.ctx.bars_in_trade, SCALAR),
        "unrealized_pct": (lambda: box.ctx.unrealized_pct, SCALAR),
        "open_orders": (lambda: box.ctx.open_orders, SCALAR),
        "adds_in_trade": (lambda: box.ctx.adds_in_trade, SCALAR),
        "bars_since_exit": (lambda: box.ctx.bars_since_exit, SCALAR),
        "trades_today": (lambda: box.ctx.trades_today, SCALAR),
    }


def compile_card(
    spec: CardSpec,
    instrument: Instrument,
    python_factory: Callable[..., PythonStrategy] | None = None,
) -> CompiledPlan:
    """Compile a validated card for one instrument; CardCompileError names the bad field."""
    box = _Box()
    exec_tf = spec.timeframe
    exec_ms = tf_ms(exec_tf)
    names: dict[str, tuple[Callable[[], Any], str]] = {}
    for attr in _PRICES:
        unit = QTY if attr == "volume" else PRICE
        names[attr] = (_candle_getter(box, attr), unit)
        names[f"{attr}_{exec_tf}"] = names[attr]
    resamplers: dict[str, Resampler] = {}
    for i, tf in enumerate(spec.higher):
        ms = tf_ms(tf)
        if ms <= exec_ms or ms % exec_ms != 0:
            raise CardCompileError(
                f"timeframes.higher[{i}]",
                f"timeframe {tf} is not a whole multiple (> 1) of the execution timeframe",
                tf,
                f"a multiple of {exec_tf}, e.g. 1h",
            )
        r = Resampler(tf)
        resamplers[tf] = r
        for attr in _PRICES:
            names[f"{attr}_{tf}"] = (_attr_getter(r, attr), QTY if attr == "volume" else PRICE)
    names.update(_position_names(box))

    indicators: list[Indicator] = []
    exec_updates: list[Callable[[int, int, int, int, int, int], None]] = []
    slow_updates: dict[str, list[Callable[[int, int, int, int, int, int], None]]] = {
        tf: [] for tf in resamplers
    }
    smas: dict[str, tuple[str, SMA]] = {}
    feature_getters: list[tuple[str, Callable[[], float]]] = []
    for f in spec.features:
        if f.timeframe != exec_tf and f.timeframe not in resamplers:
            known = [exec_tf, *resamplers]
            close = difflib.get_close_matches(f.timeframe, known, n=1, cutoff=0.3)
            raise CardCompileError(
                f"{f.path}.timeframe",
                f"feature {f.name!r} uses timeframe {f.timeframe!r}, not declared by the card",
                f.timeframe,
                "one of " + ", ".join(known) + " (declare slower ones in timeframes.higher)",
                close[0] if close else "",
            )
        if f.name in names:
            raise CardCompileError(
                f.path,
                f"feature name {f.name!r} is already a built-in name",
                f.name,
                "another name",
            )
        ind = _build_indicator(f)
        indicators.append(ind)
        (exec_updates if f.timeframe == exec_tf else slow_updates[f.timeframe]).append(ind.update)
        if isinstance(ind, SMA):
            smas[f.name] = (f.timeframe, ind)
        for name, getter, unit in _feature_names(f, ind):
            names[name] = (getter, unit)
            feature_getters.append((name, getter))
    for tf, r in resamplers.items():
        r.on_bar = _fanout(slow_updates[tf])
        for attr in _PRICES:
            feature_getters.append((f"{attr}_{tf}", _attr_getter(r, attr)))

    lags = Lags()
    scope = Scope(names, instrument.tick, instrument.step, lags)
    cond_state = CondState()

    def exact_pair(a: Operand, b: Operand) -> tuple[SMA, SMA] | None:
        if not isinstance(a, str) or not isinstance(b, str):
            return None
        x, y = smas.get(a.strip()), smas.get(b.strip())
        if x is None or y is None or x[0] != y[0]:
            return None
        return x[1], y[1]

    cc = ConditionCompiler(scope, cond_state, exact_pair)
    blocks: list[tuple[Callable[[], bool], list[IntentMaker]]] = []
    for b in spec.blocks:
        when = cc.compile(b.when)
        makers = [_compile_intent(it, b, scope, spec.engine.execution, instrument) for it in b.then]
        blocks.append((when, makers))
    lags.seal()

    python: PythonStrategy | None = None
    if python_factory is not None:
        try:
            python = python_factory(**spec.strategy_params)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # the user's constructor: report it, whatever it raised
            raise CardCompileError(
                "strategy.params",
                f"cannot build {spec.strategy_class}: {describe_failure(exc)}",
                dict(spec.strategy_params),
                "the keyword arguments its constructor accepts",
            ) from None
    return CompiledPlan(
        spec,
        indicators,
        exec_updates,
        list(resamplers.values()),
        cond_state,
        blocks,
        box,
        python,
        Bar(instrument),
        feature_getters,
        scope,
        lags,
    )


def _fanout(
    fns: list[Callable[[int, int, int, int, int, int], None]],
) -> Callable[[int, int, int, int, int, int], None]:
    def on_bar(ts: int, o: int, h: int, lo: int, c: int, v: int) -> None:
        for f in fns:
            f(ts, o, h, lo, c, v)

    return on_bar


# ----------------------------------------------------------------------- intents


def _compile_intent(
    it: IntentSpec,
    block: BlockSpec,
    scope: Scope,
    ex: ExecutionDefaults,
    instrument: Instrument,
) -> IntentMaker:
    """One intent spec -> a closure building the Intent (or None if a value is unknown)."""
    if it.action not in ACTIONS:
        raise CardCompileError(
            it.path, f"unknown action {it.action!r}", it.action, ", ".join(ACTIONS)
        )
    static: dict[str, Any] = {"action": it.action, "block": block.name}
    if it.qty is not None:
        lots = instrument.qty_to_lots(Decimal(repr(float(it.qty))), ROUND_FLOOR)
        if lots <= 0:
            raise CardCompileError(
                f"{it.path}.qty",
                f"qty {it.qty} is less than one lot ({instrument.step})",
                it.qty,
                f"at least {instrument.lots_to_qty(max(instrument.min_lots, 1))}",
            )
        static["qty"] = lots
    for k in ("equity_pct", "risk_pct", "reduce_pct"):
        val = getattr(it, k)
        if val:
            static[k] = float(val)
    if it.action == "place_limit":
        static["side"] = BUY if it.side == "long" else SELL
    style = it.style or ("limit" if it.action == "place_limit" else ex.style)
    static["style"] = style
    dynamic: list[tuple[str, Callable[[], float]]] = []
    for k in ("stop_distance", "price", "stop_loss", "take_profit", "trail_distance", "offset"):
        src = getattr(it, k)
        if src is not None:
            fn, _ = compile_value(src, scope, f"{it.path}.{k}", PRICE)
            dynamic.append((k, fn))
    if style == "limit" or it.action == "place_limit":
        if it.offset is None and ex.limit_offset_ticks:
            static["offset"] = ex.limit_offset_ticks
        static["timeout_bars"] = it.timeout_bars or ex.limit_timeout_bars
    if style in ("iceberg", "twap"):
        static["slices"] = it.slices or ex.slices
        if it.slice_every_ms or (not it.slice_every_bars and ex.slice_every_ms):
            static["slice_every_ms"] = it.slice_every_ms or ex.slice_every_ms
        else:
            static["slice_every_bars"] = it.slice_every_bars or ex.slice_every_bars
    if not dynamic:
        fixed = Intent(**static)
        return lambda: fixed
    keys = tuple(k for k, _ in dynamic)
    fns = tuple(f for _, f in dynamic)
    isfinite = math.isfinite

    def make() -> Intent | None:
        vals: dict[str, Any] = {}
        for k, f in zip(keys, fns):
            x = float(f())
            if not isfinite(x) or (x <= 0.0 and k != "offset"):
                return None
            vals[k] = x
        return Intent(**static, **vals)

    return make
