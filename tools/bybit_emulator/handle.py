"""Run an ``Emulator`` on its own event loop in a background thread, for synchronous callers.

pybit is synchronous and its WebSocket client runs on threads, so tests drive the emulator
from outside its loop. Every method here hops onto the emulator's loop, so state is only ever
touched from one thread.

    with EmulatorHandle.start(candles) as emu:
        http.endpoint = emu.rest
        emu.advance(3)                       # play three candles, deterministically
        emu.set_faults(lose_reply_next=1)    # the next order write loses its reply
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Sequence
from types import TracebackType
from typing import Any, TypeVar

from engine.events import CandleClosed

from .matching import Venue
from .server import Emulator, EmulatorConfig
from .state import EmulatorState

T = TypeVar("T")


class EmulatorHandle:
    """A started emulator plus the controls tests need (time, faults, state)."""

    def __init__(
        self, emulator: Emulator, loop: asyncio.AbstractEventLoop, thread: threading.Thread
    ) -> None:
        self.emulator = emulator
        self._loop = loop
        self._thread = thread
        urls = emulator.urls
        self.rest: str = urls["rest"]
        self.ws_public: str = urls["ws_public"]
        self.ws_private: str = urls["ws_private"]
        self.ws_trade: str = urls["ws_trade"]
        self.api_key = emulator.config.api_key
        self.api_secret = emulator.config.api_secret

    @classmethod
    def start(
        cls,
        candles: Sequence[CandleClosed],
        config: EmulatorConfig | None = None,
        venue: Venue | None = None,
    ) -> EmulatorHandle:
        """Start an emulator on 127.0.0.1 (ephemeral port unless ``config.port``)."""
        loop = asyncio.new_event_loop()
        ready: dict[str, Any] = {}
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                emu = Emulator(config or EmulatorConfig(), candles, venue)
                loop.run_until_complete(emu.start())
                ready["emu"] = emu
            except BaseException as exc:  # reported to the starting thread
                ready["error"] = exc
                started.set()
                return
            started.set()
            loop.run_forever()

        thread = threading.Thread(target=run, name="bybit-emulator", daemon=True)
        thread.start()
        started.wait(30)
        if "error" in ready:
            raise ready["error"]
        if "emu" not in ready:
            raise TimeoutError("the emulator did not start within 30 s")
        return cls(ready["emu"], loop, thread)

    # ------------------------------------------------------------------ plumbing

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def call(self, fn: Callable[[EmulatorState], T]) -> T:
        """Run ``fn(state)`` on the emulator's loop and return its result (read state safely)."""

        async def go() -> T:
            return fn(self.emulator.state)

        return self._run(go())

    # ------------------------------------------------------------------ controls

    @property
    def urls(self) -> dict[str, str]:
        return {
            "rest": self.rest,
            "ws_public": self.ws_public,
            "ws_private": self.ws_private,
            "ws_trade": self.ws_trade,
        }

    def advance(self, n: int = 1) -> int:
        """Play ``n`` candles (klines, fills, private messages); return how many were played."""
        return self._run(self.emulator.step(n))

    async def step(self, n: int = 1) -> int:
        """``advance`` for async callers on another loop."""
        fut = asyncio.run_coroutine_threadsafe(self.emulator.step(n), self._loop)
        return await asyncio.wrap_future(fut)

    def set_faults(self, **changes: Any) -> dict[str, Any]:
        """Switch faults by ``Faults`` field name; returns all current values."""

        async def go() -> dict[str, Any]:
            self.emulator.faults.update(changes)
            return self.emulator.faults.as_dict()

        return self._run(go())

    def reset_faults(self) -> None:
        async def go() -> None:
            self.emulator.faults.reset()

        self._run(go())

    def drop_ws(self, kind: str = "all") -> int:
        """Drop every WebSocket connection of ``kind`` ("public", "private", "trade", "all")."""
        return self._run(self.emulator.hub.drop(kind))

    def connections(self, kind: str = "all") -> int:
        """How many WebSocket connections of ``kind`` are open."""
        return self.call(
            lambda _: sum(1 for c in self.emulator.hub.conns if kind in ("all", c.kind))
        )

    def server_ms(self) -> int:
        """The server clock (wall clock plus skew), ms."""
        return self.emulator.now_ms()

    def status(self) -> dict[str, Any]:
        return self.call(lambda _: self.emulator.status())

    def stop(self) -> None:
        """Stop serving and end the loop thread (idempotent)."""
        if not self._loop.is_running():
            return
        try:
            self._run(self.emulator.stop(), timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> EmulatorHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
