"""The one local book folded from a session's log (inputs and derived events), no strategy."""

from __future__ import annotations

from engine.book import Book
from engine.events import BUY, FILLED, PARTIALLY_FILLED, Fill, FundingPaid, Intent
from engine.instrument import fee_for
from engine.orders import TransitionError
from tests.test_engine_support import INITIAL, MAKER_E8, UNIT, Desk, started, submits

PRICE = 500_000


def test_the_book_follows_a_limit_order_a_duplicate_fill_and_funding() -> None:
    d = Desk({0: [Intent("place_limit", side=BUY, price=499_000, qty=10)]})
    (cmd,) = submits(d.close(PRICE))
    d.accept(cmd)
    d.fill(cmd, 4, 499_000, maker=True, exec_id="x1")
    d.fill(cmd, 4, 499_000, maker=True, exec_id="x1")  # delivered twice
    d.feed(FundingPaid(d.now(), "BTCUSDT", "f1", amount=5_000))
    d.close(PRICE + 1_000)

    book = Book.of_session(started())
    refused = []
    for ev in [started(), *d.log]:
        res = book.apply(ev)
        if isinstance(res, TransitionError):
            refused.append(res.reason)
        if type(ev).__name__ == "CandleClosed":
            book.mark(ev.symbol, ev.close)  # type: ignore[union-attr]

    order = book.get(cmd.client_id)
    assert order is not None and order.venue_id == "v-" + cmd.client_id
    assert (order.status, order.filled) == (PARTIALLY_FILLED, 4)
    assert list(book.orders.open.values()) == [order]
    assert refused == ["duplicate exec_id"]

    fee = fee_for(499_000 * 4 * UNIT, MAKER_E8)
    pos = book.position
    assert (pos.qty, pos.fees, pos.funding) == (4, fee, 5_000)
    assert pos.avg_entry_ticks(UNIT) == 499_000
    unrealized = (PRICE + 1_000 - 499_000) * 4 * UNIT
    assert book.unrealized("BTCUSDT", PRICE + 1_000) == unrealized
    assert book.balance == INITIAL - fee - 5_000 == d.state.balance
    assert book.equity() == book.balance + unrealized == d.state.equity

    d.fill(cmd, 6, 499_000, maker=True)
    book.apply([e for e in d.log if type(e) is Fill][-1])
    assert order.status == FILLED and not book.orders.open


def test_an_execution_for_a_symbol_the_book_does_not_hold_is_refused() -> None:
    book = Book.of_session(started())
    foreign = Fill(1, "x-1", "v", "e1", "ETHUSDT", BUY, 30_000, 5, 1)
    assert isinstance(book.fill(foreign), TransitionError)
    assert book.position.qty == 0 and book.balance == INITIAL
