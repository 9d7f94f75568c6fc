"""A local Bybit v5 venue emulator (REST + public/private WebSocket) with fault injection.

Start it from Python (``EmulatorHandle.start(candles)`` in a background thread, or
``await Emulator(config, candles).start()`` in a loop) or from a shell
(``python -m tools.bybit_emulator --candles FILE``). Orders are matched by the backtest's
``SimVenue`` so an emulated session and a backtest of the same candles fill identically.
Modules: ``server`` (app, candle clock, control endpoints), ``rest`` (dispatcher),
``queries`` (read endpoints), ``state`` (account, order translation), ``ledger`` (order and
execution records folded from venue events), ``ws`` (streams),
``auth``, ``ratelimit``, ``faults``, ``wire`` (Bybit JSON shapes), ``candles``, ``handle``.
"""

from __future__ import annotations

from .candles import load_candle_file
from .faults import Faults
from .handle import EmulatorHandle
from .server import DEFAULT_API_KEY, DEFAULT_API_SECRET, Emulator, EmulatorConfig

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_API_SECRET",
    "Emulator",
    "EmulatorConfig",
    "EmulatorHandle",
    "Faults",
    "load_candle_file",
]
