"""replay.dispatch: a fold's commands, independent ones without waiting for each other."""

from __future__ import annotations

import asyncio

from engine.events import CancelOrder, EventBase, SubmitOrder
from replay.dispatch import groups, send_commands, units


def _submit(cid: str, reduce_only: bool = False) -> SubmitOrder:
    return SubmitOrder(0, cid, "BTCUSDT", "Sell", "Market", 1, reduce_only=reduce_only)


def test_a_flips_close_goes_before_its_entry_and_independent_orders_together() -> None:
    close, entry, stop = _submit("close", True), _submit("entry"), _submit("stop")
    cancel = CancelOrder(0, "old", reason="x")
    assert groups([entry, close, stop, cancel]) == [[close, cancel], [entry, stop]]


def test_commands_of_one_kind_form_one_unit_in_their_order() -> None:
    a, b = _submit("a"), _submit("b")
    x, y = CancelOrder(0, "x", reason="r"), CancelOrder(0, "y", reason="r")
    assert units([x, a, y, b]) == [[x, y], [a, b]]


def test_pipelined_units_do_not_wait_for_each_others_replies_but_groups_do() -> None:
    log: list[str] = []
    answered = [0]

    async def send(unit: list[EventBase]) -> None:
        cids = "+".join(getattr(c, "client_id", "") for c in unit)
        log.append(f"sent {cids}")
        await asyncio.sleep(0.05)
        log.append(f"answered {cids}")

    def after() -> None:
        answered[0] += 1

    async def run(pipelined: bool) -> list[str]:
        log.clear()
        cancel = CancelOrder(0, "old", reason="x")
        cmds = [_submit("close", True), cancel, _submit("a"), _submit("b")]
        await send_commands(cmds, send, after, pipelined=pipelined)
        return list(log)

    assert asyncio.run(run(True)) == [
        "sent close", "sent old", "answered close", "answered old", "sent a+b", "answered a+b",
    ]  # fmt: skip
    assert asyncio.run(run(False)) == [
        "sent close", "answered close", "sent old", "answered old", "sent a+b", "answered a+b",
    ]  # fmt: skip
    assert answered[0] == 8  # once per command, each run
