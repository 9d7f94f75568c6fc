"""`replay diff` aligns sessions by market time and ignores ids that legitimately differ."""

from engine.events import (
    BUY,
    CandleClosed,
    EventBase,
    Fill,
    Intent,
    IntentEmitted,
    SessionStarted,
    SubmitOrder,
)
from engine.instrument import BTCUSDT
from replay.compare import diff, records


def session(prefix: str, fill_price: int, wall_ts: int) -> list[EventBase]:
    """A tiny session; ``prefix`` changes every id, ``wall_ts`` every venue timestamp."""
    started = SessionStarted(0, prefix, "backtest", "", "", "sim", BTCUSDT, "t", 1, timeframe="1m")
    candle = CandleClosed(60_000, "BTCUSDT", "1m", 0, 60_000, 10, 12, 9, 11, 5)
    intent = IntentEmitted(60_000, Intent("enter_long", qty=3))
    order = SubmitOrder(60_000, f"{prefix}-1", "BTCUSDT", BUY, "Market", 3)
    fill = Fill(
        wall_ts, f"{prefix}-1", f"{prefix}-v1", f"{prefix}-e1", "BTCUSDT", BUY, fill_price, 3, 7
    )
    return [started, candle, intent, order, fill]


def test_sessions_that_decide_the_same_are_the_same_whatever_their_ids() -> None:
    a = records(session("backtest-1", 11, 61_000))
    b = records(session("live-7", 11, 61_234))
    result = diff(a, b)
    assert result.same
    assert result.counts_a == result.counts_b
    assert result.counts_a["fill"] == 1 and result.counts_a["order"] == 1


def test_the_first_difference_is_named_with_market_time() -> None:
    result = diff(records(session("a", 11, 0)), records(session("b", 12, 0)))
    assert not result.same
    assert result.first is not None
    assert result.first.index == 2  # intent, order, then the fill differs
    assert result.first.a is not None and result.first.b is not None
    assert result.first.a["kind"] == "fill"
    assert result.first.a["market_ms"] == 60_000
    assert (result.first.a["price"], result.first.b["price"]) == (11, 12)
    assert result.differing == 2  # one fill only in a, one only in b


def test_a_missing_record_is_a_difference() -> None:
    full = records(session("a", 11, 0))
    result = diff(full, full[:-1])
    assert not result.same and result.first is not None
    assert result.first.b is None
    assert result.counts_b["fill"] == 0


def test_client_order_ids_are_venue_legal_and_never_shared_between_sessions() -> None:
    import re

    from engine.intents import client_prefix

    a = client_prefix("ma_cross-20261122-032444")
    b = client_prefix("ma_cross-20261122-032445")  # same card, one second later
    assert a != b
    weird = client_prefix("my.session with spaces/and-more-than-36-characters-long")
    for prefix in (a, b, weird):
        full = f"{prefix}-{2**32}"
        assert len(full) <= 36 and re.fullmatch(r"[A-Za-z0-9_-]+", full)
