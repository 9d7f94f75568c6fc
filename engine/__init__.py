"""The pure core of replay: events, fixed-point numbers, the fold. No I/O, no clock."""

import tools.compiled  # noqa: F401 (first: installs the REPLAY_COMPILED=1 hook, if set)
