"""Card parameters: the ``params:`` section, ``${name}`` substitution and overrides.

Grammar (the one ``replay sweep`` reads too)::

    params:
      fast: 10                          # short form: the default; type from it (int)
      slow: {default: 30, type: int, min: 10, max: 200, sweep: {min: 20, max: 200, step: 20}}
      k:    {default: 2.0, min: 0.5, sweep: [1.5, 2.0, 2.5]}

``type`` is ``int`` or ``float`` (default: ``int`` when the default is an integer, else
``float``); ``min`` / ``max`` are inclusive bounds; ``sweep`` is a range ``{min, max,
step}`` (both ends included) or a list of values, each checked against type and bounds.

Anywhere else in the card, a scalar that is exactly ``${name}`` becomes the number, and
``${name}`` inside a longer string (an expression such as ``"close - ${k} * atr"``) is
replaced by the number's text. Substitution happens on the parsed data, whose shape is
unchanged, so every later error still points at the line of the ``${...}``.

Overrides (``replay run --set fast=20``, a sweep trial) replace defaults; they may be
strings (parsed by the param's type) or numbers. ``apply`` is the pure entry point a
sweep calls per trial.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from replay.cards.errors import IdeaCardError
from replay.cards.yamlnodes import format_path, line_of

if TYPE_CHECKING:
    from replay.cards.loader import LoadedCard

Number = int | float

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REF_RE = re.compile(r"\$\{([^}]*)\}")
_KEYS = ("default", "type", "min", "max", "sweep")
_MAX_SWEEP = 100_000


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter."""

    name: str
    default: Number
    type: str  # "int" | "float"
    min: Number | None = None
    max: Number | None = None
    sweep: tuple[Number, ...] = ()


class _Bad(Exception):
    def __init__(self, message: str, found: Any, expected: str) -> None:
        super().__init__(message)
        self.message = message
        self.found = found
        self.expected = expected


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def coerce(value: Any, kind: str) -> Number:
    """``value`` (a number or its text) as a ``kind`` number; ``_Bad`` if it is not one."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text) if kind == "int" else float(text)
        except ValueError:
            raise _Bad(
                f"not {'an int' if kind == 'int' else 'a float'}", text, _want(kind)
            ) from None
    if not _is_num(value):
        raise _Bad(f"not {'an int' if kind == 'int' else 'a float'}", value, _want(kind))
    if kind == "int":
        if isinstance(value, float):
            if not value.is_integer():
                raise _Bad("not an int", value, _want(kind))
            value = int(value)
        return value
    value = float(value)
    if not math.isfinite(value):
        raise _Bad("not a finite float", value, _want(kind))
    return value


def _want(kind: str) -> str:
    return "an integer such as 20" if kind == "int" else "a number such as 2.5"


def _check_bounds(spec: ParamSpec, value: Number) -> Number:
    if spec.min is not None and value < spec.min:
        raise _Bad("below the minimum", value, f"{spec.type} in {_range(spec)}")
    if spec.max is not None and value > spec.max:
        raise _Bad("above the maximum", value, f"{spec.type} in {_range(spec)}")
    return value


def _range(spec: ParamSpec) -> str:
    lo = "-inf" if spec.min is None else str(spec.min)
    hi = "inf" if spec.max is None else str(spec.max)
    return f"[{lo}, {hi}]"


def _expand_sweep(raw: Any, kind: str) -> tuple[Number, ...]:
    if isinstance(raw, list):
        if not raw:
            raise _Bad("empty sweep list", raw, "at least one value")
        return tuple(coerce(v, kind) for v in raw)
    if isinstance(raw, dict):
        unknown = [k for k in raw if k not in ("min", "max", "step")]
        if unknown or not all(k in raw for k in ("min", "max", "step")):
            raise _Bad("a sweep range has min, max and step", raw, "{min: 5, max: 50, step: 5}")
        lo, hi, step = (coerce(raw[k], kind) for k in ("min", "max", "step"))
        if step <= 0 or hi < lo:
            raise _Bad("sweep needs step > 0 and max >= min", raw, "{min: 5, max: 50, step: 5}")
        n = math.floor((hi - lo) / step + 1e-9) + 1
        if n > _MAX_SWEEP:
            raise _Bad(f"sweep has {n} values", raw, f"at most {_MAX_SWEEP}")
        if kind == "int":
            return tuple(int(lo) + i * int(step) for i in range(n))
        return tuple(round(lo + i * step, 12) for i in range(n))
    raise _Bad("not a sweep", raw, "a list of values or {min: 5, max: 50, step: 5}")


def _parse_one(name: str, raw: Any) -> ParamSpec:
    if not _NAME_RE.match(name):
        raise _Bad("not a parameter name", name, "letters, digits and _, not starting with a digit")
    if _is_num(raw):
        raw = {"default": raw}
    if not isinstance(raw, dict):
        raise _Bad("not a parameter", raw, "a number or {default: 10, type: int, min:, max:}")
    for key in raw:
        if key not in _KEYS:
            close = difflib.get_close_matches(str(key), _KEYS, n=1, cutoff=0.6)
            raise _Bad(
                f"unknown key {key!r}" + (f" -- did you mean {close[0]!r}?" if close else ""),
                key,
                "one of " + ", ".join(_KEYS),
            )
    if "default" not in raw:
        raise _Bad("missing required field 'default'", None, "a default value")
    kind = raw.get("type")
    if kind is None:
        kind = "int" if isinstance(raw["default"], int) and _is_num(raw["default"]) else "float"
    if kind not in ("int", "float"):
        raise _Bad("not a parameter type", kind, "int or float")
    lo = None if raw.get("min") is None else coerce(raw["min"], kind)
    hi = None if raw.get("max") is None else coerce(raw["max"], kind)
    if lo is not None and hi is not None and hi < lo:
        raise _Bad("max is below min", {"min": lo, "max": hi}, "min <= max")
    spec = ParamSpec(name, coerce(raw["default"], kind), kind, lo, hi)
    _check_bounds(spec, spec.default)
    sweep = () if raw.get("sweep") is None else _expand_sweep(raw["sweep"], kind)
    for v in sweep:
        _check_bounds(spec, v)
    return ParamSpec(name, spec.default, kind, lo, hi, sweep)


def parse_specs(raw: Any, source: str, root: yaml.Node | None) -> dict[str, ParamSpec]:
    """The ``params:`` section as specs (empty when absent); IdeaCardError with its line."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise IdeaCardError(
            source,
            "expected a mapping here",
            line=line_of(root, ["params"]),
            path="params",
            found=raw,
            expected="name: default lines, e.g. fast: 10",
        )
    out: dict[str, ParamSpec] = {}
    for name, body in raw.items():
        try:
            out[str(name)] = _parse_one(str(name), body)
        except _Bad as exc:
            raise IdeaCardError(
                source,
                exc.message,
                line=line_of(root, ["params", str(name)]),
                path=f"params.{name}",
                found=exc.found,
                expected=exc.expected,
            ) from None
    return out


def resolve(
    specs: Mapping[str, ParamSpec],
    overrides: Mapping[str, Any],
    source: str,
    root: yaml.Node | None = None,
) -> dict[str, Number]:
    """Effective values: defaults in declaration order, overrides checked and applied."""
    values: dict[str, Number] = {n: s.default for n, s in specs.items()}
    for name, raw in overrides.items():
        spec = specs.get(name)
        if spec is None:
            close = difflib.get_close_matches(name, list(specs), n=1, cutoff=0.6)
            raise IdeaCardError(
                source,
                f"--set {name}: unknown parameter",
                line=line_of(root, ["params"]),
                path="params",
                found=name,
                expected=("one of " + ", ".join(specs)) if specs else "no params (none declared)",
                suggestion=close[0] if close else "",
            )
        try:
            values[name] = _check_bounds(spec, coerce(raw, spec.type))
        except _Bad as exc:
            raise IdeaCardError(
                source,
                f"--set {name}: {exc.message}",
                line=line_of(root, ["params", name]),
                path=f"params.{name}",
                found=exc.found,
                expected=exc.expected,
            ) from None
    return values


def substitute(data: Any, values: Mapping[str, Number], source: str, root: Any) -> Any:
    """``data`` with every ``${name}`` replaced; IdeaCardError (with line) on unknown names."""

    def text_of(v: Number) -> str:
        return str(v) if isinstance(v, int) else repr(v)

    def lookup(name: str, loc: list[str | int]) -> Number:
        name = name.strip()
        if name in values:
            return values[name]
        close = difflib.get_close_matches(name, list(values), n=1, cutoff=0.6)
        raise IdeaCardError(
            source,
            f"unknown parameter ${{{name}}}",
            line=line_of(root, loc),
            path=format_path(loc),
            found=name,
            expected=("one of " + ", ".join(values)) if values else "a name declared in params:",
            suggestion=close[0] if close else "",
        )

    def go(node: Any, loc: list[str | int]) -> Any:
        if isinstance(node, dict):
            return {k: go(v, [*loc, str(k)]) for k, v in node.items()}
        if isinstance(node, list):
            return [go(v, [*loc, i]) for i, v in enumerate(node)]
        if isinstance(node, str) and "${" in node:
            whole = _REF_RE.fullmatch(node.strip())
            if whole:
                return lookup(whole.group(1), loc)
            return _REF_RE.sub(lambda m: text_of(lookup(m.group(1), loc)), node)
        return node

    return go(data, [])


def format_params(values: Mapping[str, Number]) -> str:
    """``{"fast": 20, "k": 2.0}`` -> ``"fast=20 k=2.0"`` (for listings)."""
    return " ".join(f"{k}={v}" for k, v in values.items())


def parse_sets(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``["fast=20", "slow=100"]`` -> ``{"fast": "20", "slow": "100"}``; ValueError if malformed."""
    out: dict[str, str] = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name.strip() or not value.strip():
            raise ValueError(f"--set {item!r}: expected NAME=VALUE, e.g. --set fast=20")
        out[name.strip()] = value.strip()
    return out


def apply(card: LoadedCard | str, overrides: Mapping[str, Any], source: str = "") -> LoadedCard:
    """The card with ``overrides`` applied: pure, no file read (the sweep calls it per trial).

    ``card`` is a ``LoadedCard`` (its text, source and directory are reused) or card text.
    Raises ``IdeaCardError`` for unknown names, wrong types and out-of-bound values.
    """
    from replay.cards.loader import LoadedCard, load_card_text, reload

    if isinstance(card, LoadedCard):
        return reload(card, overrides)
    return load_card_text(card, source or "<text>", params=overrides)
