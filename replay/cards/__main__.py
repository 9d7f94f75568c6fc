"""``python -m replay.cards CARD...``: check cards without running them.

Prints one line per card (its name, symbol, timeframe, features and blocks) or the
``IdeaCardError``; exits 1 if any card is bad.
"""

from __future__ import annotations

import sys

from replay.cards import IdeaCardError, load_card


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m replay.cards CARD.yaml [CARD.yaml ...]", file=sys.stderr)
        return 2
    bad = 0
    for path in argv:
        try:
            card = load_card(path)
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
        )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
