"""A tiny, safe arithmetic language for card expressions, compiled once into closures.

Grammar (a subset of Python, parsed with ``ast`` and never ``eval``-ed): numbers;
names (``close``, ``atr``, ``bb.upper``, ``close_1h``, ``bars_in_trade``); lagged names
(``close[1]``, ``dc.upper[3]``: the value n execution bars back, 0 <= n <= 500, see
engine/lags.py); ``+ - * /``;
unary ``-``; ``min(a, b, ...)``, ``max(...)``, ``abs(x)``, ``ticks(n)``; and, in
conditions, comparisons (``< <= > >= == !=``, chains allowed), ``and``, ``or``, ``not``.

Units. Every name has a unit: *price* (values in ticks internally: prices, moving
averages, ATR, bands, swings), *qty* (lots: volume, position), *scalar* (RSI, ROC,
bars_in_trade, unrealized_pct) or *bool* (flat, long, short). A bare number takes
the unit of what it is added to, subtracted from, compared with or min/max-ed with,
and is read in the card's human units: a price in the quote currency (``close - 50``
is 50 USDT below the close, converted to ticks with the instrument's tick size), a
quantity in the base currency. A number multiplied with or dividing something is a
plain factor (``0.5 * atr``). A number standing alone where a price or distance is
expected (``stop_distance: 150``) is quote currency. ``ticks(n)`` is n raw ticks.
A division by zero gives NaN; every comparison with NaN is false.
"""

from __future__ import annotations

import ast
import difflib
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Final

from engine.card import CardCompileError
from engine.lags import MAX_LAG, Lags

PRICE: Final = "price"
QTY: Final = "qty"
SCALAR: Final = "scalar"
BOOL: Final = "bool"

FloatFn = Callable[[], int | float]  # candle fields, position and counts are ints
BoolFn = Callable[[], bool]
_NAN: Final = math.nan
_FUNCS: Final = ("min", "max", "abs", "ticks")
_ALLOWED: Final = (
    "numbers, names, lagged names (close[1]), + - * /, parentheses, min/max/abs/ticks(...), "
    "comparisons (< <= > >= == !=), and/or/not"
)


class Scope:
    """The names an expression may use: name -> (zero-argument getter, unit)."""

    __slots__ = ("names", "tick", "qty_step", "lags")

    def __init__(
        self,
        names: dict[str, tuple[Callable[[], float | bool], str]],
        tick: Decimal,
        qty_step: Decimal,
        lags: Lags | None = None,
    ) -> None:
        self.names = names
        self.tick = tick
        self.qty_step = qty_step
        self.lags = lags  # None: lagged names are refused

    def literal(self, value: float, unit: str | None) -> float:
        """A card number in human units -> the internal unit (ticks, lots) as a float."""
        if unit == PRICE:
            return float(Decimal(repr(float(value))) / self.tick)
        if unit == QTY:
            return float(Decimal(repr(float(value))) / self.qty_step)
        return float(value)

    def suggest(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self.names), n=1, cutoff=0.6)
        return close[0] if close else ""


def _div(a: float, b: float) -> float:
    return a / b if b != 0.0 else _NAN


class _Compiler:
    def __init__(self, scope: Scope, path: str, text: str) -> None:
        self.scope = scope
        self.path = path
        self.text = text

    # -- errors
    def fail(
        self, message: str, found: str, expected: str, suggestion: str = ""
    ) -> CardCompileError:
        return CardCompileError(
            self.path, f"{message} in expression {self.text!r}", found, expected, suggestion
        )

    def bad_syntax(self, node: ast.AST) -> CardCompileError:
        return self.fail(f"unsupported {type(node).__name__}", ast.unparse(node), _ALLOWED)

    # -- names
    def dotted(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            base = self.dotted(node.value)
            return None if base is None else f"{base}.{node.attr}"
        return None

    def lookup(self, node: ast.AST) -> tuple[Callable[[], float | bool], str]:
        name = self.dotted(node)
        if name is None:
            raise self.bad_syntax(node)
        got = self.scope.names.get(name)
        if got is None:
            known = [n for n in self.scope.names if not n.startswith("_")]
            expected = "a feature, a price (open high low close volume, e.g. close_1h) or " + (
                "position state; known: " + ", ".join(known[:40])
            )
            raise self.fail(f"unknown name {name!r}", name, expected, self.scope.suggest(name))
        return got

    def lag_of(self, node: ast.Subscript) -> tuple[str, int]:
        """The name and bar count of ``name[n]``, checked (0 <= n <= MAX_LAG, an integer)."""
        name = self.dotted(node.value)
        if name is None:
            raise self.bad_syntax(node)
        sl = node.slice
        if isinstance(sl, ast.UnaryOp) and isinstance(sl.op, ast.USub):
            v = sl.operand.value if isinstance(sl.operand, ast.Constant) else None
            n: object = -v if type(v) is int else None
        else:
            n = sl.value if isinstance(sl, ast.Constant) else None
        if type(n) is not int or not 0 <= n <= MAX_LAG:
            raise self.fail(
                f"bad lag {ast.unparse(sl)!r} of {name!r}",
                ast.unparse(node),
                f"a whole number of bars from 0 to {MAX_LAG}, e.g. {name}[1]",
            )
        if self.lookup(node.value)[1] == BOOL:
            raise self.fail(
                f"{name!r} is a true/false name and cannot be lagged",
                ast.unparse(node),
                "a feature, a price or a numeric position value",
            )
        if self.scope.lags is None:
            raise self.fail("lagged values are not available here", ast.unparse(node), name)
        return name, n

    def lagged(self, node: ast.Subscript) -> FloatFn:
        name, n = self.lag_of(node)
        assert self.scope.lags is not None
        return self.scope.lags.getter(name, self.scope.names[name][0], n)

    # -- units
    def unit(self, node: ast.AST) -> str | None:
        """The unit of a subtree; None if it is made of numbers only."""
        if isinstance(node, ast.Constant):
            return None
        if isinstance(node, ast.Subscript):
            name, _ = self.lag_of(node)
            return self.scope.names[name][1]
        if isinstance(node, ast.Name | ast.Attribute):
            return self.lookup(node)[1]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            return self.unit(node.operand)
        if isinstance(node, ast.BinOp):
            ul, ur = self.unit(node.left), self.unit(node.right)
            if isinstance(node.op, ast.Add | ast.Sub):
                return ul or ur
            if isinstance(node.op, ast.Mult):
                if ul is None or ul == SCALAR:
                    return ur if ur is not None else ul
                return ul if ur is None or ur == SCALAR else SCALAR
            if isinstance(node.op, ast.Div):
                if ur is None or ur == SCALAR:
                    return ul
                return SCALAR
            raise self.bad_syntax(node)
        if isinstance(node, ast.Call):
            fname = node.func.id if isinstance(node.func, ast.Name) else ""
            if fname == "ticks":
                return PRICE
            if fname in ("min", "max", "abs"):
                for arg in node.args:
                    u = self.unit(arg)
                    if u is not None:
                        return u
                return None
            raise self.fail(
                f"unknown function {fname or ast.unparse(node.func)!r}",
                fname,
                "one of min, max, abs, ticks",
                difflib.get_close_matches(fname, _FUNCS, n=1, cutoff=0.5)[0]
                if difflib.get_close_matches(fname, _FUNCS, n=1, cutoff=0.5)
                else "",
            )
        raise self.bad_syntax(node)

    def const(self, node: ast.AST) -> float:
        """Fold a numbers-only subtree."""
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise self.fail("not a number", repr(node.value), "a number")
            return float(node.value)
        if isinstance(node, ast.UnaryOp):
            v = self.const(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp):
            a, b = self.const(node.left), self.const(node.right)
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Sub):
                return a - b
            if isinstance(node.op, ast.Mult):
                return a * b
            return _div(a, b)
        if isinstance(node, ast.Call):
            vals = [self.const(x) for x in node.args]
            fname = node.func.id if isinstance(node.func, ast.Name) else ""
            if fname == "min":
                return min(vals)
            if fname == "max":
                return max(vals)
            return abs(vals[0])
        raise self.bad_syntax(node)

    # -- values
    def value(self, node: ast.AST, ctx_unit: str | None) -> tuple[FloatFn, str | None]:
        u = self.unit(node)
        if u is None:
            k = self.scope.literal(self.const(node), ctx_unit)
            return (lambda: k), ctx_unit
        if u == BOOL:
            raise self.fail("a true/false name used as a number", ast.unparse(node), "a number")
        return self.compiled(node, u), u

    def compiled(self, node: ast.AST, u: str) -> FloatFn:
        """Compile a subtree that contains at least one name; ``u`` is its unit."""
        if isinstance(node, ast.Name | ast.Attribute):
            return self.lookup(node)[0]
        if isinstance(node, ast.Subscript):
            return self.lagged(node)
        if isinstance(node, ast.UnaryOp):
            f, _ = self.value(node.operand, u)
            if isinstance(node.op, ast.USub):
                return lambda: -f()
            return f
        if isinstance(node, ast.BinOp):
            return self.binop(node, u)
        if isinstance(node, ast.Call):
            fname = node.func.id  # type: ignore[attr-defined]
            if fname == "ticks":
                if len(node.args) != 1 or self.unit(node.args[0]) is not None:
                    raise self.fail(
                        "ticks() takes one number", ast.unparse(node), "ticks(<number>)"
                    )
                k = self.const(node.args[0])
                return lambda: k
            if node.keywords or not node.args or (fname == "abs" and len(node.args) != 1):
                raise self.fail(f"bad call of {fname}", ast.unparse(node), f"{fname}(a, b, ...)")
            fns = [self.value(a, u)[0] for a in node.args]
            if fname == "abs":
                g = fns[0]
                return lambda: abs(g())
            return _minmax(fns, fname == "min")
        raise self.bad_syntax(node)

    def binop(self, node: ast.BinOp, u: str) -> FloatFn:
        op = node.op
        ul, ur = self.unit(node.left), self.unit(node.right)
        if isinstance(op, ast.Add | ast.Sub):
            a, _ = self.value(node.left, u)
            b, _ = self.value(node.right, u)
        else:  # a constant factor or divisor is a plain number
            a, _ = self.value(node.left, SCALAR if ul is None else ul)
            b, _ = self.value(node.right, SCALAR if ur is None else ur)
        if isinstance(op, ast.Add):
            return lambda: a() + b()
        if isinstance(op, ast.Sub):
            return lambda: a() - b()
        if isinstance(op, ast.Mult):
            return lambda: a() * b()
        return lambda: _div(a(), b())

    # -- booleans
    def boolean(self, node: ast.AST) -> BoolFn:
        if isinstance(node, ast.BoolOp):
            parts = [self.boolean(v) for v in node.values]
            return all_of(parts) if isinstance(node.op, ast.And) else any_of(parts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            f = self.boolean(node.operand)
            return lambda: not f()
        if isinstance(node, ast.Compare):
            terms = [node.left, *node.comparators]
            parts = []
            for i, op in enumerate(node.ops):
                parts.append(self.compare(_OPNAMES.get(type(op), ""), terms[i], terms[i + 1]))
            return parts[0] if len(parts) == 1 else all_of(parts)
        if isinstance(node, ast.Subscript):
            self.lag_of(node)
            raise self.fail(
                f"{ast.unparse(node)!r} is a number, not a condition",
                ast.unparse(node),
                "a comparison such as 'close > dc.upper[1]'",
            )
        if isinstance(node, ast.Name | ast.Attribute):
            fn, unit = self.lookup(node)
            if unit != BOOL:
                raise self.fail(
                    f"{ast.unparse(node)!r} is a number, not a condition",
                    ast.unparse(node),
                    "a comparison such as 'close > sma' or one of flat, long, short",
                )
            return fn  # type: ignore[return-value]
        raise self.fail(
            "not a condition", ast.unparse(node), "a comparison, and/or/not, flat, long or short"
        )

    def compare(self, op: str, left: ast.AST, right: ast.AST) -> BoolFn:
        if not op:
            raise self.fail("unsupported comparison", "is/in", "< <= > >= == !=")
        ul, ur = self.unit(left), self.unit(right)
        u = ul or ur
        a, _ = self.value(left, u)
        b, _ = self.value(right, u)
        return compare_fns(op, a, b)


_OPNAMES: Final = {
    ast.Gt: "gt",
    ast.Lt: "lt",
    ast.GtE: "ge",
    ast.LtE: "le",
    ast.Eq: "eq",
    ast.NotEq: "ne",
}


def _minmax(fns: list[FloatFn], is_min: bool) -> FloatFn:
    if len(fns) == 2:
        f, g = fns
        if is_min:
            return lambda: min(f(), g())
        return lambda: max(f(), g())
    if is_min:
        return lambda: min(h() for h in fns)
    return lambda: max(h() for h in fns)


def compare_fns(op: str, a: FloatFn, b: FloatFn) -> BoolFn:
    """A closure comparing two float getters (NaN compares false, except for ``ne``)."""
    if op == "gt":
        return lambda: a() > b()
    if op == "lt":
        return lambda: a() < b()
    if op == "ge":
        return lambda: a() >= b()
    if op == "le":
        return lambda: a() <= b()
    if op == "eq":
        return lambda: a() == b()
    if op == "ne":
        return lambda: a() != b()
    raise ValueError(f"unknown comparison {op!r}")


def all_of(parts: list[BoolFn]) -> BoolFn:
    """Short-circuit AND of closures, in the card's order (unrolled for small arities)."""
    n = len(parts)
    if n == 1:
        return parts[0]
    if n == 2:
        p, q = parts
        return lambda: p() and q()
    if n == 3:
        p, q, r = parts
        return lambda: p() and q() and r()
    if n == 4:
        p, q, r, s = parts
        return lambda: p() and q() and r() and s()
    fns = tuple(parts)

    def every() -> bool:
        for f in fns:  # noqa: SIM110 -- a plain loop: no generator per call (hot path)
            if not f():
                return False
        return True

    return every


def any_of(parts: list[BoolFn]) -> BoolFn:
    """Short-circuit OR of closures, in the card's order."""
    n = len(parts)
    if n == 1:
        return parts[0]
    if n == 2:
        p, q = parts
        return lambda: p() or q()
    if n == 3:
        p, q, r = parts
        return lambda: p() or q() or r()
    fns = tuple(parts)

    def some() -> bool:
        for f in fns:  # noqa: SIM110 -- a plain loop: no generator per call (hot path)
            if f():
                return True
        return False

    return some


#: Expressions are a line or two; longer or deeper ones are refused, not parsed into
#: a RecursionError.
MAX_EXPR_CHARS: Final = 2000
MAX_EXPR_DEPTH: Final = 60


def _parse(text: str, path: str) -> ast.AST:
    expected = "an expression such as 'close - 0.5 * atr'"
    if len(text) > MAX_EXPR_CHARS:
        raise CardCompileError(
            path,
            f"expression of {len(text):,} characters is too long",
            text,
            f"an expression of at most {MAX_EXPR_CHARS} characters",
        )
    try:
        body = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise CardCompileError(
            path, f"cannot parse expression {text!r}: {exc.msg}", text, expected
        ) from None
    except (RecursionError, MemoryError):
        body = None
    if body is None or _depth(body) > MAX_EXPR_DEPTH:
        raise CardCompileError(
            path,
            "expression nested too deeply",
            text,
            f"an expression nested at most {MAX_EXPR_DEPTH} levels",
        )
    return body


def _depth(node: ast.AST) -> int:
    """The depth of an AST, without recursion."""
    deepest, todo = 0, [(node, 1)]
    while todo:
        n, d = todo.pop()
        deepest = max(deepest, d)
        todo.extend((c, d + 1) for c in ast.iter_child_nodes(n))
    return deepest


def unit_of(src: str | float | int, scope: Scope, path: str) -> str | None:
    """The unit of an expression or number (None for a number)."""
    if not isinstance(src, str):
        return None
    return _Compiler(scope, path, src).unit(_parse(src, path))


def compile_value(
    src: str | float | int, scope: Scope, path: str, unit: str | None = PRICE
) -> tuple[FloatFn, str | None]:
    """Compile an expression or number to a getter; ``unit`` is how a bare number is read."""
    if isinstance(src, bool):
        raise CardCompileError(path, "expected a number or expression", src, "a number")
    if not isinstance(src, str):
        k = scope.literal(float(src), unit)
        return (lambda: k), unit
    c = _Compiler(scope, path, src)
    return c.value(_parse(src, path), unit)


def compile_bool(text: str, scope: Scope, path: str) -> BoolFn:
    """Compile a boolean expression ("close > sma and not long")."""
    return _Compiler(scope, path, text).boolean(_parse(text, path))


def compile_compare(
    op: str, left: str | float | int, right: str | float | int, scope: Scope, path: str
) -> BoolFn:
    """Compile ``left op right`` where each side is an expression or a number."""
    u = unit_of(left, scope, path) or unit_of(right, scope, path)
    a, _ = compile_value(left, scope, path, u)
    b, _ = compile_value(right, scope, path, u)
    return compare_fns(op, a, b)
