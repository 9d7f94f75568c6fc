"""``load_card`` / ``load_card_text``: YAML text -> a validated, compiled-once ``LoadedCard``.

Everything that can be wrong with a card is found here, before anything runs: YAML
syntax, duplicate keys, structure and types (pydantic), indicator names and
parameters, names inside expressions and the Python class path (a trial compile
against the card's symbol with BTCUSDT's filters). Every failure is an
``IdeaCardError`` naming the file, line, field path, what was found and expected.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import inspect
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import yaml
from pydantic import BaseModel, ValidationError

from adapters.sim.config import SimConfig
from engine.card import CardCompileError, CardSpec
from engine.config import EngineConfig
from engine.events import InstrumentSpec
from engine.instrument import BTCUSDT, Instrument, InstrumentError
from engine.plan import CompiledPlan, compile_card
from engine.strategy import Strategy
from engine.timeframes import is_timeframe, tf_ms
from replay.cards.convert import to_engine_config, to_sim_config, to_spec
from replay.cards.errors import IdeaCardError
from replay.cards.params import Number, ParamSpec, parse_specs, resolve, substitute
from replay.cards.pyclass import ClassPathError, load_class
from replay.cards.schema import CardModel
from replay.cards.yamlnodes import format_path, key_line, line_of, read_yaml, split_path, walk


@dataclass(frozen=True)
class LoadedCard:
    """A card that loaded: its text and hash (for the log), its parts, a strategy factory."""

    source: str
    text: str
    hash: str
    spec: CardSpec
    symbol: str
    timeframe: str
    engine_config: EngineConfig
    sim_config: SimConfig
    strategy_class: type[Any] | None = field(default=None, repr=False)
    params: dict[str, Number] = field(default_factory=dict)  # effective values
    param_specs: dict[str, ParamSpec] = field(default_factory=dict, repr=False)
    card_dir: Path | None = field(default=None, repr=False)
    instrument: InstrumentSpec | None = None  # the card's instrument: section, if any

    def new_strategy(self, instrument: Instrument) -> Strategy:
        """A fresh compiled strategy for one session on ``instrument``."""
        return _compile(self.spec, instrument, self.strategy_class, self.source, None)


def load_card(
    path: str | Path, params: Mapping[str, Any] | None = None, *, timeframe: str | None = None
) -> LoadedCard:
    """Read and load the card file at ``path``, ``params`` overriding its defaults.

    ``timeframe`` overrides its execution timeframe (``replay run --timeframe``).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise IdeaCardError(
            str(p),
            f"cannot read the card: {exc.strerror}",
            found=str(p),
            expected="a readable file",
        ) from None
    except UnicodeDecodeError as exc:
        raw = p.read_bytes()[: exc.start]
        raise IdeaCardError(
            str(p),
            f"not UTF-8 text (byte {exc.start}: {exc.object[exc.start : exc.start + 1]!r})",
            line=raw.count(b"\n") + 1,
            found=raw.splitlines()[-1].decode("utf-8", "replace") if raw.strip() else None,
            expected="a UTF-8 encoded YAML file",
        ) from None
    return _load(text, str(p), p.resolve().parent, params or {}, timeframe)


def load_card_text(
    text: str,
    source: str = "<text>",
    params: Mapping[str, Any] | None = None,
    *,
    timeframe: str | None = None,
) -> LoadedCard:
    """Load a card from its text (``replay verify`` rebuilds the strategy from the log).

    ``params`` are the overrides (``SessionStarted.params`` when rebuilding a session).
    """
    p = Path(source)
    card_dir = p.resolve().parent if source and not source.startswith("<") else None
    return _load(text, source, card_dir, params or {}, timeframe)


def reload(card: LoadedCard, params: Mapping[str, Any]) -> LoadedCard:
    """``card`` again with other parameter values (no file read), at the same timeframe;
    the YAML is parsed once per text (a sweep reloads its card once a trial)."""
    return _load(card.text, card.source, card.card_dir, params, card.timeframe)


@functools.lru_cache(maxsize=4)
def _parsed(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    """``read_yaml``, kept for the next load of the same text: ``_load`` only reads the
    data (``substitute`` builds new containers), so sharing it is safe."""
    return read_yaml(text, source)


def _load(
    text: str,
    source: str,
    card_dir: Path | None,
    overrides: Mapping[str, Any],
    timeframe: str | None,
) -> LoadedCard:
    data, root = _parsed(text, source)
    if not isinstance(data, dict):
        raise IdeaCardError(
            source,
            "a card is a YAML mapping",
            line=1 if root is None else root.start_mark.line + 1,
            found=type(data).__name__ if data is not None else "an empty document",
            expected="keys such as symbol, features, blocks",
        )
    specs = parse_specs(data.get("params"), source, root)
    values = resolve(specs, overrides, source, root)
    data = {k: v for k, v in substitute(data, values, source, root).items() if k != "params"}
    try:
        model = CardModel.model_validate(data)
    except ValidationError as exc:
        raise _from_pydantic(exc, source, root) from None
    if timeframe is not None and timeframe != model.timeframes.execution:
        model = _at_timeframe(model, timeframe, source)
    card_spec = _card_instrument(model)
    instrument = _trial_instrument(model, card_spec, source, root)
    engine = to_engine_config(model, instrument.tick)
    spec = to_spec(model, engine)
    cls: type[Any] | None = None
    if model.strategy is not None:
        try:
            cls = load_class(model.strategy.class_, card_dir)
        except ClassPathError as exc:
            raise IdeaCardError(
                source,
                str(exc),
                line=line_of(root, ["strategy", "class"]),
                path="strategy.class",
                found=exc.found,
                expected=exc.expected,
                suggestion=exc.suggestion,
            ) from None
    if cls is not None and values:
        merged = _merged_params(cls, values, spec.strategy_params)
        spec = msgspec.structs.replace(spec, strategy_params=merged)
    _compile(spec, instrument, cls, source, root)  # every name checked now, not at run time
    return LoadedCard(
        source=source,
        text=text,
        hash=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        spec=spec,
        symbol=model.symbol,
        timeframe=model.timeframes.execution,
        engine_config=engine,
        sim_config=to_sim_config(model),
        strategy_class=cls,
        params=values,
        param_specs=specs,
        card_dir=card_dir,
        instrument=card_spec,
    )


def _card_instrument(model: CardModel) -> InstrumentSpec | None:
    i = model.instrument
    if i is None:
        return None
    return InstrumentSpec(
        symbol=model.symbol,
        tick_size=i.tick_size,
        qty_step=i.qty_step,
        min_qty=i.min_qty,
        min_notional=i.min_notional,
        max_qty=i.max_qty,
        base_coin=i.base,
        quote_coin=i.quote,
        funding_interval=i.funding_interval // 60_000 if i.perpetual else 0,
    )


def _trial_instrument(
    model: CardModel, card_spec: InstrumentSpec | None, source: str, root: Any
) -> Instrument:
    """The card's own instrument, else BTCUSDT's filters under the card's symbol."""
    if card_spec is None:
        return Instrument(InstrumentSpec(**{**_spec_fields(BTCUSDT), "symbol": model.symbol}))
    try:
        return Instrument(card_spec)
    except InstrumentError as exc:
        raise IdeaCardError(
            source,
            str(exc),
            line=line_of(root, ["instrument"]),
            path="instrument",
            found=f"tick_size={card_spec.tick_size}, qty_step={card_spec.qty_step}",
            expected="tick_size and qty_step > 0 whose product is a multiple of 1e-8",
        ) from None


def _at_timeframe(model: CardModel, timeframe: str, source: str) -> CardModel:
    """The card run at another execution timeframe (``replay run --timeframe``)."""
    if not is_timeframe(timeframe):
        raise IdeaCardError(
            source,
            "--timeframe is not a timeframe",
            path="timeframes.execution",
            found=timeframe,
            expected="e.g. 1m, 5m, 15m, 1h, 4h, 1d",
        )
    exec_ms = tf_ms(timeframe)
    for i, higher in enumerate(model.timeframes.higher):
        ms = tf_ms(higher)
        if ms <= exec_ms or ms % exec_ms:
            raise IdeaCardError(
                source,
                f"--timeframe {timeframe} does not divide the card's higher timeframe {higher}",
                path=f"timeframes.higher[{i}]",
                found=timeframe,
                expected=f"a --timeframe faster than {higher} that divides it (e.g. 1m, 5m)",
            )
    frames = model.timeframes.model_copy(update={"execution": timeframe})
    return model.model_copy(update={"timeframes": frames})


def _merged_params(
    cls: type[Any], values: dict[str, Number], own: dict[str, Any]
) -> dict[str, Any]:
    """What a Python strategy's constructor receives: card params, then its own on top.

    Card params go in only where the constructor can take them (it names the parameter,
    or has ``**kwargs``), so a param used only by the card's features does not break a
    class that never heard of it. ``strategy.params`` are passed as given (an unknown one
    is still an error).
    """
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        return {**values, **own}
    ps = sig.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in ps):
        return {**values, **own}
    names = {p.name for p in ps if p.kind is not inspect.Parameter.POSITIONAL_ONLY}
    return {**{k: v for k, v in values.items() if k in names}, **own}


def _spec_fields(spec: InstrumentSpec) -> dict[str, Any]:
    return {f: getattr(spec, f) for f in spec.__struct_fields__}


def _compile(
    spec: CardSpec, instrument: Instrument, cls: type[Any] | None, source: str, root: Any
) -> CompiledPlan:
    try:
        return compile_card(spec, instrument, cls)
    except CardCompileError as exc:
        loc = split_path(exc.path)
        raise IdeaCardError(
            source,
            exc.message,
            line=line_of(root, loc),
            path=exc.path,
            found=exc.found,
            expected=exc.expected,
            suggestion=exc.suggestion,
        ) from None


# --------------------------------------------------------------- pydantic errors

_RANK = {"extra_forbidden": 0, "missing": 1}


def _from_pydantic(exc: ValidationError, source: str, root: Any) -> IdeaCardError:
    errors = exc.errors(include_url=False)
    # The most useful error: unknown keys first, then missing ones, then the deepest.
    best = min(errors, key=lambda e: (_RANK.get(e["type"], 2), -len(e["loc"])))
    loc = list(best["loc"])
    kind = best["type"]
    ctx = best.get("ctx") or {}
    kept, _node, _key = walk(root, loc)
    path = format_path(kept)
    suggestion = str(ctx.get("suggestion", "") or "")
    expected = str(ctx.get("expected", "") or "")
    found: Any = best.get("input")
    message = best["msg"]
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = _allowed_keys(loc[:-1])
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        message = f"unknown key {key!r}"
        found = key
        expected = "one of " + ", ".join(allowed) if allowed else "no such key"
        suggestion = close[0] if close else ""
        line = key_line(root, loc)
    elif kind == "missing":
        message = f"missing required field {str(loc[-1])!r}"
        found = None
        expected = expected or f"a value for {loc[-1]}"
        line = line_of(root, loc[:-1]) or 1
    elif kind == "missing_blocks":
        path = "blocks"
        found = None
        line = 1
    elif kind == "string_pattern_mismatch" and kept == ["symbol"]:
        message = "not a symbol"
        expected = "an upper-case Bybit symbol such as BTCUSDT"
        line = line_of(root, kept)
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        message = "expected a mapping here"
        expected = "a mapping (key: value lines or {key: value})"
        line = line_of(root, kept)
    else:
        if not expected:
            msg = str(best["msg"])
            head = "Input should be "
            expected = msg[len(head) :] if msg.startswith(head) else msg
            message = f"invalid value ({msg})" if not msg.startswith(head) else "invalid value"
        line = line_of(root, kept)
    return IdeaCardError(
        source,
        message + (more if len(errors) > 1 else ""),
        line=line,
        path=path,
        found=found,
        expected=expected,
        suggestion=suggestion,
    )


def _models_in(t: Any) -> list[type[BaseModel]]:
    """The pydantic models a (possibly Annotated / Optional / Union) type may be."""
    origin = typing.get_origin(t)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(t)[0])
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        out: list[type[BaseModel]] = []
        for a in typing.get_args(t):
            out.extend(_models_in(a))
        return out
    if isinstance(t, type) and issubclass(t, BaseModel):
        return [t]
    return []


def _step(t: Any, elem: str | int) -> Any:
    """The type one loc element deeper inside ``t`` (None if it cannot be followed)."""
    origin = typing.get_origin(t)
    if origin is typing.Annotated:
        return _step(typing.get_args(t)[0], elem)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if isinstance(elem, str) and elem.startswith("<"):
            return t  # a discriminator tag: stay on the union, members are tried below
        for a in typing.get_args(t):
            r = _step(a, elem)
            if r is not None:
                return r
        return None
    if origin in (list, tuple) and isinstance(elem, int):
        args = typing.get_args(t)
        return args[0] if args else None
    if origin is dict and isinstance(elem, str):
        args = typing.get_args(t)
        return args[1] if len(args) == 2 else None
    if isinstance(t, type) and issubclass(t, BaseModel) and isinstance(elem, str):
        for name, f in t.model_fields.items():
            if elem in (name, f.alias):
                return f.annotation
    return None


def _allowed_keys(parent_loc: list[str | int]) -> list[str]:
    t: Any = CardModel
    for elem in parent_loc:
        t = _step(t, elem)
        if t is None:
            return []
    keys: list[str] = []
    for m in _models_in(t):
        for name, f in m.model_fields.items():
            k = f.alias or name
            if k not in keys:
                keys.append(k)
    return keys
