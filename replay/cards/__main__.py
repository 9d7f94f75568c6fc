"""``python -m replay.cards CARD...``: check cards without running them.

Prints one line per card (its name, symbol, timeframe, features, blocks and params) or
the ``IdeaCardError``; exits 1 if any card is bad. ``--set NAME=VALUE`` (repeatable)
overrides params as ``replay run --set`` does, with the same checks.
"""

from __future__ import annotations

import sys

from replay.cards import IdeaCardError, load_card
from replay.cards.params import format_params, parse_sets

_USAGE = "usage: python -m replay.cards [--set NAME=VALUE ...] CARD.yaml [CARD.yaml ...]"


def main(argv: list[str]) -> int:
    paths: list[str] = []
    sets: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--set":
            sets.append(next(args, ""))
        elif arg.startswith("--set="):
            sets.append(arg[len("--set=") :])
        else:
            paths.append(arg)
    try:
        overrides = parse_sets(sets)
    except ValueError as exc:
        print(f"{_USAGE}\nerror: {exc}", file=sys.stderr)
        return 2
    if not paths:
        print(_USAGE, file=sys.stderr)
        return 2
    bad = 0
    for path in paths:
        try:
            card = load_card(path, overrides)
        except IdeaCardError as exc:
            print(f"ERROR {exc}")
            bad += 1
            continue
        spec = card.spec
        print(
            f"OK {path}: {spec.name or '-'} {card.symbol} {card.timeframe}"
            f"{' +' + ','.join(spec.higher) if spec.higher else ''}, "
            f"{len(spec.features)} features, {len(spec.blocks)} blocks"
            f"{', python ' + spec.strategy_class if spec.strategy_class else ''}"
            f"{', params ' + format_params(card.params) if card.params else ''}"
        )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
