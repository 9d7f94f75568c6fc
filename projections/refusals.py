"""What a session refused, counted from its log: nothing refused is hidden.

The one place these counts are made (the summary table, ``--json``, summary.json and
report.html all read them from here). ``RefusalCount`` folds a session's events, inputs
and derived alike, and ``summary(blocks)`` says:

* ``intents``: intents the strategy emitted (``IntentEmitted``), by block in
  ``by_block``;
* ``risk``: the engine's risk rejections (``RiskRejected``) by reason;
* ``venue``: orders the venue rejected (``OrderRejected``) by code and reason;
* ``failed_protections``: protection the card asked for that could not exist
  (``ProtectionFailed``), by reason;
* ``liquidations``: positions the venue liquidated (``Liquidated``, once per exec id);
* ``refused``: intents refused, either by a risk rejection or because the venue
  rejected an order the intent submitted (an order is the intent's when its
  ``SubmitOrder`` was derived in the same step, after that ``IntentEmitted``);
* ``never_fired``: the card's blocks that emitted no intent at all.

Reasons are grouped with every number in them written ``N`` ("size 0 lots below min
qty 1" and "size 3 lots below min qty 1" are one reason), so a reason that names a price
or a size does not split into thousands of rows. ``warn`` is true when more than
``WARN_ABOVE`` (5 %) of the intents were refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from operator import truediv  # int / int rounded once, as Python does, also under mypyc
from typing import Any, Final

import msgspec

from engine.events import (
    DERIVED_TYPES,
    EventBase,
    IntentEmitted,
    Liquidated,
    OrderRejected,
    ProtectionFailed,
    RiskRejected,
    SubmitOrder,
    TimerFired,
)

#: More than this fraction of intents refused and the summary prints a warning.
WARN_ABOVE: Final = 0.05

_NUMBER: Final = re.compile(r"\d+(?:\.\d+)?")
_DERIVED: Final = frozenset(DERIVED_TYPES)


def reason_key(reason: str) -> str:
    """A reason with its numbers written ``N``: the key counts are grouped by."""
    return _NUMBER.sub("N", reason.strip()) or "(no reason given)"


class RefusalSummary(msgspec.Struct, gc=False):
    """The counts of one session (see the module doc); dicts are ordered by count, then name."""

    intents: int = 0
    refused: int = 0
    risk: "dict[str, int]" = {}  # noqa: UP037 (quoted: mypyc keeps it for msgspec)
    venue: "dict[str, int]" = {}  # noqa: UP037 (quoted: mypyc keeps it for msgspec)
    failed_protections: "dict[str, int]" = {}  # noqa: UP037 (quoted: mypyc keeps it for msgspec)
    liquidations: int = 0
    by_block: "dict[str, int]" = {}  # noqa: UP037 (quoted: mypyc keeps it for msgspec)
    never_fired: "list[str]" = []  # noqa: UP037 (quoted: mypyc keeps it for msgspec)

    @property
    def refused_fraction(self) -> float:
        return truediv(self.refused, self.intents) if self.intents else 0.0

    @property
    def warn(self) -> bool:
        return self.refused_fraction > WARN_ABOVE

    @property
    def risk_total(self) -> int:
        return sum(self.risk.values())

    @property
    def venue_total(self) -> int:
        return sum(self.venue.values())

    @property
    def failed_protection_total(self) -> int:
        return sum(self.failed_protections.values())

    def as_dict(self) -> dict[str, object]:
        """JSON-ready, with the totals, the refused fraction and the warning flag."""
        out: dict[str, object] = msgspec.to_builtins(self)
        out.update(
            refused_fraction=self.refused_fraction,
            warning=self.warn,
            risk_total=self.risk_total,
            venue_total=self.venue_total,
            failed_protection_total=self.failed_protection_total,
        )
        return out


def _ranked(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


class RefusalCount:
    """Folds events into refusal counts; cheap per event (a type test and a dict bump)."""

    __slots__ = (
        "intents",
        "risk",
        "venue",
        "failed_protections",
        "by_block",
        "_liquidated",
        "step_intent",
        "_order_intent",
        "_refused",
    )

    def __init__(self) -> None:
        self.intents = 0
        self.risk: dict[str, int] = {}
        self.venue: dict[str, int] = {}
        self.failed_protections: dict[str, int] = {}
        self.by_block: dict[str, int] = {}
        self._liquidated: set[str] = set()
        # Index of the last intent of the step being read; -1 once an input starts a new
        # step (``AccountView`` sets it on each candle itself, to keep candles cheap).
        self.step_intent = -1
        self._order_intent: dict[str, int] = {}
        self._refused: set[int] = set()

    def fold(self, events: Iterable[EventBase]) -> RefusalCount:
        for event in events:
            self.apply(event)
        return self

    def apply(self, event: EventBase) -> None:
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)
        elif type(event) not in _DERIVED:
            self.step_intent = -1  # a new step: what follows is derived from it, not the intent

    def _on_intent(self, event: IntentEmitted) -> None:
        self.step_intent = self.intents
        self.intents += 1
        block = event.intent.block
        self.by_block[block] = self.by_block.get(block, 0) + 1

    def _on_risk_rejected(self, event: RiskRejected) -> None:
        _bump(self.risk, reason_key(event.reason))
        if self.step_intent >= 0:
            self._refused.add(self.step_intent)

    def _on_submit(self, event: SubmitOrder) -> None:
        if self.step_intent >= 0:
            self._order_intent[event.client_id] = self.step_intent

    def _on_order_rejected(self, event: OrderRejected) -> None:
        key = reason_key(event.reason)
        _bump(self.venue, f"{event.code} {key}" if event.code else key)
        owner = self._order_intent.get(event.client_id, -1)
        if owner >= 0:
            self._refused.add(owner)
        self.step_intent = -1

    def _on_liquidated(self, event: Liquidated) -> None:
        self._liquidated.add(event.exec_id)
        self.step_intent = -1

    def _on_timer(self, event: TimerFired) -> None:
        self.step_intent = -1  # a timer starts a step of its own, as an input does

    def _on_protection_failed(self, event: ProtectionFailed) -> None:
        """Protection the card asked for could not exist."""
        _bump(self.failed_protections, reason_key(event.reason))

    def summary(self, blocks: Sequence[str] = ()) -> RefusalSummary:
        """The counts; ``blocks`` are the card's block names, for ``never_fired``."""
        return RefusalSummary(
            intents=self.intents,
            refused=len(self._refused),
            risk=_ranked(self.risk),
            venue=_ranked(self.venue),
            failed_protections=_ranked(self.failed_protections),
            liquidations=len(self._liquidated),
            by_block={b: self.by_block.get(b, 0) for b in blocks} | _ranked(self.by_block),
            never_fired=[b for b in blocks if not self.by_block.get(b)],
        )


def _bump(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


#: The kinds that count for something, by type (every other input starts a new step).
_HANDLERS: Final[dict[type, Callable[[RefusalCount, Any], None]]] = {
    IntentEmitted: RefusalCount._on_intent,
    RiskRejected: RefusalCount._on_risk_rejected,
    SubmitOrder: RefusalCount._on_submit,
    OrderRejected: RefusalCount._on_order_rejected,
    ProtectionFailed: RefusalCount._on_protection_failed,
    Liquidated: RefusalCount._on_liquidated,
    TimerFired: RefusalCount._on_timer,
}
