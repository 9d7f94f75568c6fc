"""The read models an app shows, folded from a session's log (inputs and derived events)."""

from __future__ import annotations

from engine.events import BUY, FILLED, PARTIALLY_FILLED, Fill, FundingPaid, Intent
from engine.instrument import fee_for
from projections.balances import BalanceView
from projections.orders import OrdersView
from projections.positions import PositionView
from tests.test_engine_support import INITIAL, MAKER_E8, UNIT, Desk, started, submits

PRICE = 500_000


def test_views_follow_a_limit_order_a_duplicate_fill_and_funding() -> None:
    d = Desk({0: [Intent("place_limit", side=BUY, price=499_000, qty=10)]})
    (cmd,) = submits(d.close(PRICE))
    d.accept(cmd)
    d.fill(cmd, 4, 499_000, maker=True, exec_id="x1")
    d.fill(cmd, 4, 499_000, maker=True, exec_id="x1")  # delivered twice
    d.feed(FundingPaid(d.now(), "BTCUSDT", "f1", amount=5_000))
    d.close(PRICE + 1_000)

    orders, positions, balances = OrdersView(), PositionView(), BalanceView()
    for ev in [started(), *d.log]:
        orders.apply(ev)
        positions.apply(ev)
        balances.apply(ev)

    order = orders.by_venue_id["v-" + cmd.client_id]
    assert order is orders.by_client_id[cmd.client_id]
    assert (order.status, order.filled) == (PARTIALLY_FILLED, 4)
    assert orders.open() == [order]
    assert [r.reason for r in orders.refused] == ["duplicate exec_id"]

    fee = fee_for(499_000 * 4 * UNIT, MAKER_E8)
    assert (positions.qty, positions.fees, positions.funding) == (4, fee, 5_000)
    assert positions.avg_entry == 499_000
    assert positions.unrealized == (PRICE + 1_000 - 499_000) * 4 * UNIT
    assert balances.balance == INITIAL - fee - 5_000
    assert balances.equity == balances.balance + positions.unrealized

    d.fill(cmd, 6, 499_000, maker=True)
    orders.apply([e for e in d.log if type(e) is Fill][-1])
    assert order.status == FILLED and orders.open() == []
