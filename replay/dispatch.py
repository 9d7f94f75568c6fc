"""Sending one fold's commands: independent ones without waiting for each other's replies.

Over the WebSocket Trade API (``pipelined``) every command of a group goes out at once and
the replies come back on the one socket in order; only what must be ordered waits: cancels,
amends and reduce-only orders (a flip's close) are answered before new entries are sent.
Over REST the commands go one after the other, as before (concurrent HTTP requests could
answer out of order, and the log would then differ from run to run).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from engine.events import EventBase, SubmitOrder


def groups(commands: Sequence[EventBase]) -> list[list[EventBase]]:
    """Commands in the groups that must follow each other (closing first, then entries)."""
    first = [c for c in commands if not isinstance(c, SubmitOrder) or c.reduce_only]
    later: list[EventBase] = [
        c for c in commands if isinstance(c, SubmitOrder) and not c.reduce_only
    ]
    return [g for g in (first, later) if g]


async def send_commands(
    commands: Sequence[EventBase],
    send: Callable[[EventBase], Awaitable[None]],
    after: Callable[[], None],
    *,
    pipelined: bool,
) -> None:
    """Send ``commands`` (already committed); ``after()`` once each has been answered."""

    async def one(cmd: EventBase) -> None:
        await send(cmd)
        after()

    if not pipelined:
        for cmd in commands:
            await one(cmd)
        return
    for group in groups(commands):
        await asyncio.gather(*(one(cmd) for cmd in group))
