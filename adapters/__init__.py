"""The edges: historical data, the simulated venue, Bybit REST and WebSocket."""

import tools.compiled  # noqa: F401 (first: installs the REPLAY_COMPILED=1 hook, if set)
