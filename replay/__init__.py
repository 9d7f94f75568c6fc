"""The replay application: CLI, session runner, live daemon."""

from typing import TYPE_CHECKING, Any

import tools.compiled  # noqa: F401 (first: installs the REPLAY_COMPILED=1 hook, if set)

__version__ = "0.1.0"

if TYPE_CHECKING:
    from replay.notebook import open as open


def __getattr__(name: str) -> Any:
    """``replay.open(store, session)``: a session as pandas DataFrames (replay.notebook),
    imported on first use so the CLI does not pay for it."""
    if name == "open":
        from replay.notebook import open as open_session

        return open_session
    raise AttributeError(f"module 'replay' has no attribute {name!r}")
