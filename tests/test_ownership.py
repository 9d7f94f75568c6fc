"""Whose is a venue event: this session's by its client-id prefix, else external."""

from __future__ import annotations

from engine.commands import client_prefix
from engine.config import EngineConfig
from engine.core import new_state, step
from engine.events import (
    BUY,
    NEW,
    ExternalFill,
    ExternalOrder,
    Fill,
    FundingPaid,
    OrderAccepted,
    OrderCancelled,
    decode,
    encode,
)
from engine.ownership import Ownership
from engine.strategy import NullStrategy
from tests.test_engine_support import INITIAL, candle, started

SESSION = started().session_id
OWN = f"{client_prefix(SESSION)}-3"


def fill(client_id: str) -> Fill:
    return Fill(5, client_id, "v-1", "e-1", "BTCUSDT", BUY, 500_000, 10, 42, exec_type="Trade")


def test_this_sessions_fills_pass_everything_else_becomes_external() -> None:
    who = Ownership(SESSION)
    assert who.as_input(fill(OWN)) == fill(OWN)
    # A take-profit/stop-loss attached to our order, reported under an id derived from it.
    assert who.as_input(fill(OWN + "tp")) == fill(OWN + "tp")
    for foreign in ("", "L1-4", f"{client_prefix('L1')}-4", client_prefix(SESSION)):
        ext = who.as_input(fill(foreign))
        assert ext == ExternalFill(5, foreign, "v-1", "e-1", "BTCUSDT", BUY, 500_000, 10, 42)
        assert decode(encode(ext)) == ext  # a tagged event of the log's format


def test_order_messages_of_other_orders_become_external_orders() -> None:
    who = Ownership(SESSION)
    assert who.as_input(OrderAccepted(1, OWN, "v")) == OrderAccepted(1, OWN, "v")
    assert who.as_input(OrderAccepted(1, "L1-2", "v9")) == ExternalOrder(
        1, "v9", "L1-2", "", 0, 0, NEW
    )
    assert who.as_input(OrderCancelled(1, "", "v8")).status == "Cancelled"  # type: ignore[attr-defined]
    funding = FundingPaid(1, "BTCUSDT", "f1", 10)
    assert who.as_input(funding) is funding  # no client id: the account's, judged elsewhere


def test_the_engine_never_counts_an_external_fill() -> None:
    state = new_state(started(), NullStrategy(), EngineConfig())
    step(state, candle(0, 500_000))
    out = step(state, ExternalFill(5, "", "v", "e", "BTCUSDT", BUY, 500_000, 10, 42))
    assert out == [] and state.position.qty == 0 and state.balance == INITIAL
