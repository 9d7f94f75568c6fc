"""``IdeaCardError``: one bad card, said in one paragraph a user can act on."""

from __future__ import annotations

from typing import Any


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class IdeaCardError(Exception):
    """A card that cannot run: names the file, line, field path, found, expected, suggestion.

    ``line`` is 1-based (None when YAML cannot place it); ``path`` is the field path such
    as ``blocks[2].then.enter_long.risk_pct`` ("" for the whole document).
    """

    def __init__(
        self,
        source: str,
        message: str,
        *,
        line: int | None = None,
        path: str = "",
        found: Any = None,
        expected: str = "",
        suggestion: str = "",
    ) -> None:
        self.source = source
        self.message = message
        self.line = line
        self.path = path
        self.found = found
        self.expected = expected
        self.suggestion = suggestion
        super().__init__(self._text())

    def _text(self) -> str:
        where = self.source if self.line is None else f"{self.source}, line {self.line}"
        parts = [f"{where}: {self.path or '(card)'}: {self.message}"]
        if self.found is not None:
            parts.append(f"found {_show(self.found)}")
        if self.expected:
            parts.append(f"expected {self.expected}")
        text = "; ".join(parts)
        if self.suggestion:
            text += f" -- did you mean {self.suggestion!r}?"
        return text
