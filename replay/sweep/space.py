"""The search space: the card's declared ``sweep:`` ranges, overridden by ``--grid``.

``--grid NAME=MIN:MAX:STEP`` (both ends included), ``--grid NAME=V1,V2,...`` or
``--grid NAME=V``; each value is checked against the param's type and bounds as
``--set`` checks it. Params without a range stay at their default. ``--where A<B``
(``<``, ``<=``, ``>``, ``>=``, ``!=``) drops the combinations that break it, as the
classic SMA grid keeps fast < slow.
"""

from __future__ import annotations

import difflib
import itertools
import operator
import random
import re
from collections.abc import Callable, Mapping
from typing import Final

import msgspec

from replay.cards.params import Number, ParamSpec, _Bad, _check_bounds, _expand_sweep, coerce
from replay.errors import InputError

MAX_COMBINATIONS: Final = 1_000_000
_OPS: Final[dict[str, Callable[[Number, Number], bool]]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_WHERE_RE: Final = re.compile(r"^\s*([A-Za-z_]\w*)\s*(<=|>=|!=|<|>)\s*([A-Za-z_]\w*|-?[\d.]+)\s*$")


class Space(msgspec.Struct, frozen=True):
    """Values per param in the card's declaration order, and the ``--where`` rules."""

    values: dict[str, list[Number]]
    where: list[str] = []

    @property
    def swept(self) -> list[str]:
        return [name for name, vals in self.values.items() if len(vals) > 1]

    def allows(self, params: Mapping[str, Number]) -> bool:
        return all(_rule(text)(params) for text in self.where)

    def grid(self) -> list[dict[str, Number]]:
        """Every allowed combination, in product order (the last param varies fastest)."""
        names = list(self.values)
        out = []
        for combo in itertools.product(*(self.values[n] for n in names)):
            params = dict(zip(names, combo))
            if self.allows(params):
                out.append(params)
        return out

    def sample(self, n: int, seed: int) -> list[dict[str, Number]]:
        """``n`` distinct allowed combinations drawn with ``random.Random(seed)``."""
        grid = self.grid()
        picks = random.Random(seed).sample(range(len(grid)), min(n, len(grid)))
        return [grid[i] for i in picks]


def _rule(text: str) -> Callable[[Mapping[str, Number]], bool]:
    m = _WHERE_RE.match(text)
    assert m is not None  # checked in build()
    left, op, right = m.groups()

    def value(token: str, params: Mapping[str, Number]) -> Number:
        return params[token] if token in params else float(token)

    return lambda p: _OPS[op](value(left, p), value(right, p))


def _unknown(name: str, specs: Mapping[str, ParamSpec], what: str) -> InputError:
    close = difflib.get_close_matches(name, list(specs), n=1, cutoff=0.6)
    hint = f" -- did you mean {close[0]!r}?" if close else ""
    known = ", ".join(specs) if specs else "none (the card declares no params:)"
    return InputError(f"{what}: unknown parameter {name!r}{hint}; the card's params: {known}")


def parse_grid(item: str, spec: ParamSpec) -> list[Number]:
    """One ``--grid`` value list for ``spec``; InputError naming what was expected."""
    _, _, text = item.partition("=")
    example = "--grid fast=5:50:5 or --grid fast=10,20,30"
    try:
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise _Bad("a range is MIN:MAX:STEP", text, example)
            raw = dict(zip(("min", "max", "step"), parts))
            values = list(_expand_sweep(raw, spec.type))
        else:
            values = [coerce(v, spec.type) for v in text.split(",") if v.strip()]
            if not values:
                raise _Bad("no values", text, example)
        for v in values:
            _check_bounds(spec, v)
    except _Bad as exc:
        raise InputError(
            f"--grid {item!r}: {exc.message} (found {exc.found!r}; expected {exc.expected})"
        ) from None
    return values


def build(specs: Mapping[str, ParamSpec], grids: list[str], where: list[str]) -> Space:
    """The space a sweep searches; InputError for unknown names, bad ranges or rules."""
    values: dict[str, list[Number]] = {
        name: list(spec.sweep) if spec.sweep else [spec.default] for name, spec in specs.items()
    }
    for item in grids:
        name, eq, text = item.partition("=")
        name = name.strip()
        if not eq or not name or not text.strip():
            raise InputError(
                f"--grid {item!r}: expected NAME=MIN:MAX:STEP, e.g. --grid fast=5:50:5"
            )
        spec = specs.get(name)
        if spec is None:
            raise _unknown(name, specs, f"--grid {item!r}")
        values[name] = list(dict.fromkeys(parse_grid(item, spec)))
    for text in where:
        m = _WHERE_RE.match(text)
        if m is None:
            raise InputError(
                f"--where {text!r}: expected NAME<NAME or NAME<=NUMBER, e.g. fast<slow"
            )
        for token in (m.group(1), m.group(3)):
            if (token[0].isalpha() or token[0] == "_") and token not in specs:
                raise _unknown(token, specs, f"--where {text!r}")
    space = Space(values, list(where))
    if not space.swept:
        raise InputError(
            "nothing to sweep: no param has more than one value; give a range, "
            "e.g. --grid fast=5:50:5, or declare sweep: in the card's params:"
        )
    size = 1
    for vals in values.values():
        size *= len(vals)
    if size > MAX_COMBINATIONS:
        raise InputError(f"the grid has {size:,} combinations; at most {MAX_COMBINATIONS:,}")
    if not space.grid():
        raise InputError(f"no combination satisfies --where {' and '.join(where)}")
    return space
