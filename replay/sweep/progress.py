"""What a running sweep tells the terminal (the default: nothing)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from replay.sweep.events import TrialDone


class Progress:
    def start(self, total: int, done: int) -> None: ...

    def advance(self, trial: TrialDone) -> None: ...

    def stop(self) -> None: ...
