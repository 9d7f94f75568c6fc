"""Read models folded from events: orders, positions, balances, equity, trades, metrics."""

import tools.compiled  # noqa: F401 (first: installs the REPLAY_COMPILED=1 hook, if set)
