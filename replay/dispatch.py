"""Sending one fold's commands: independent ones together, without waiting for each other.

What must be ordered waits: cancels, amends and reduce-only orders (a flip's close) are
answered before new entries are sent (``groups``). Within a group the commands of one kind
(creates, amends, cancels) go out as one unit (``units``), which the venue sends as one
batch request when it holds more than one. Over the WebSocket Trade API (``pipelined``) a
group's units go out at once and their replies come back on the one socket; over REST the
units go one after the other (concurrent HTTP requests could answer out of order, and the
log would then differ from run to run). A lone command is sent directly, without a task.
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


def units(group: Sequence[EventBase]) -> list[list[EventBase]]:
    """A group's commands by kind, each kind in the order given (kinds by first appearance)."""
    out: dict[type, list[EventBase]] = {}
    for cmd in group:
        out.setdefault(type(cmd), []).append(cmd)
    return list(out.values())


async def send_commands(
    commands: Sequence[EventBase],
    send: Callable[[list[EventBase]], Awaitable[None]],
    after: Callable[[], None],
    *,
    pipelined: bool,
) -> None:
    """Send ``commands`` (already committed) unit by unit; ``after()`` once per command
    when it has been answered."""

    async def one(unit: list[EventBase]) -> None:
        await send(unit)
        for _ in unit:
            after()

    for group in groups(commands):
        parts = units(group)
        if pipelined and len(parts) > 1:
            await asyncio.gather(*(one(unit) for unit in parts))
        else:
            for unit in parts:
                await one(unit)
