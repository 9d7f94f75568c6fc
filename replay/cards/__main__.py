"""``python -m replay.cards CARD...``: check cards without running them.

The same check as ``replay check`` (``replay.cards.check``): one line per card (its
name, symbol, timeframe, features, blocks, params and tick) or the error ``replay run``
would give; exits 2 if any card is invalid. ``--set NAME=VALUE`` (repeatable) overrides
params as ``replay run --set`` does; ``--store DIR`` names the store whose instruments
cache is consulted (default: runs), ``--instrument KEY=VALUE,...`` as for ``replay run``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from replay.cards.check import check_card
from replay.cards.params import parse_sets

_USAGE = (
    "usage: python -m replay.cards [--set NAME=VALUE ...] [--store DIR]"
    " [--instrument KEY=VALUE,...] CARD.yaml [CARD.yaml ...]"
)
_OPTIONS = ("--set", "--store", "--instrument")


def main(argv: list[str]) -> int:
    paths: list[str] = []
    given: dict[str, list[str]] = {o: [] for o in _OPTIONS}
    args = iter(argv)
    for arg in args:
        name, eq, value = arg.partition("=")
        if name in _OPTIONS:
            given[name].append(value if eq else next(args, ""))
        else:
            paths.append(arg)
    try:
        overrides = parse_sets(given["--set"])
    except ValueError as exc:
        print(f"{_USAGE}\nerror: {exc}", file=sys.stderr)
        return 2
    if not paths or len(given["--store"]) > 1 or len(given["--instrument"]) > 1:
        print(_USAGE, file=sys.stderr)
        return 2
    store = Path(given["--store"][0] if given["--store"] else "runs")
    instrument = given["--instrument"][0] if given["--instrument"] else None
    bad = 0
    for path in paths:
        verdict = check_card(path, overrides, store=store, instrument=instrument)
        for warning in verdict.warnings:
            print(warning, file=sys.stderr)
        print(verdict.line())
        bad += not verdict.ok
    return 2 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
