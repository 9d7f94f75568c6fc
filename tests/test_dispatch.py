"""replay.dispatch: a fold's commands, independent ones without waiting for each other."""

from __future__ import annotations

import asyncio

from engine.events import CancelOrder, EventBase, SubmitOrder
from replay.dispatch import groups, send_commands


def _submit(cid: str, reduce_only: bool = False) -> SubmitOrder:
    return SubmitOrder(0, cid, "BTCUSDT", "Sell", "Market", 1, reduce_only=reduce_only)


def test_a_flips_close_goes_before_its_entry_and_independent_orders_together() -> None:
    close, entry, stop = _submit("close", True), _submit("entry"), _submit("stop")
    cancel = CancelOrder(0, "old", reason="x")
    assert groups([entry, close, stop, cancel]) == [[close, cancel], [entry, stop]]


def test_pipelined_sends_do_not_wait_for_each_others_replies_but_groups_do() -> None:
    log: list[str] = []

    async def send(cmd: EventBase) -> None:
        cid = getattr(cmd, "client_id", "")
        log.append(f"sent {cid}")
        await asyncio.sleep(0.05)
        log.append(f"answered {cid}")

    async def run(pipelined: bool) -> list[str]:
        log.clear()
        cmds = [_submit("close", True), _submit("a"), _submit("b")]
        await send_commands(cmds, send, lambda: None, pipelined=pipelined)
        return list(log)

    assert asyncio.run(run(True)) == [
        "sent close", "answered close", "sent a", "sent b", "answered a", "answered b",
    ]  # fmt: skip
    assert asyncio.run(run(False)) == [
        "sent close", "answered close", "sent a", "answered a", "sent b", "answered b",
    ]  # fmt: skip
