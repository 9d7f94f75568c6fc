"""IdeaCards at the app edge: YAML reading, pydantic validation, errors, Python strategy classes.

``load_card(path)`` / ``load_card_text(text, source)`` return a ``LoadedCard`` whose
``new_strategy(instrument)`` compiles a fresh ``engine.plan.CompiledPlan`` per session.
The card language itself is documented in ideacards/README.md.
"""

from replay.cards.errors import IdeaCardError
from replay.cards.loader import LoadedCard, load_card, load_card_text

__all__ = ["IdeaCardError", "LoadedCard", "load_card", "load_card_text"]
