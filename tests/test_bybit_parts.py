"""The Bybit adapter's pure parts: clock math, rate limiter, retry classes, keys, config."""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.bybit.clock import ClockSample, ExchangeClock, best_sample, server_ms_from_time_result
from adapters.bybit.config import BybitConfig
from adapters.bybit.errors import ApiError, ConfigError, KeysError, TransportError
from adapters.bybit.keys import ApiKeys, Secret, load_keys
from adapters.bybit.ratelimit import ENDPOINT_LIMITS, RateLimiter, WindowBucket
from adapters.bybit.retry import Action, Backoff, classify
from adapters.bybit.ws import auth_message

SECRET = "TEST_SECRET_do_not_use"

# ------------------------------------------------------------------------ clock


def test_offset_is_server_minus_round_trip_midpoint() -> None:
    s = ClockSample(sent_ms=1000, server_ms=11_050, received_ms=1100)
    assert s.rtt_ms == 100 and s.offset_ms == 10_000


def test_lowest_rtt_sample_wins_and_negative_rtt_is_dropped() -> None:
    a = ClockSample(0, 5000, 80)
    b = ClockSample(100, 5130, 120)
    bad = ClockSample(200, 0, 150)
    assert best_sample([a, b, bad]) is b
    with pytest.raises(ValueError):
        best_sample([bad])


@settings(max_examples=200, deadline=None)
@given(
    true_offset=st.integers(-(10**7), 10**7),
    sent=st.integers(0, 10**12),
    rtt=st.integers(0, 5000),
    where=st.floats(0, 1),
)
def test_offset_error_is_at_most_half_the_round_trip(
    true_offset: int, sent: int, rtt: int, where: float
) -> None:
    stamped_local = sent + int(rtt * where)  # the server stamped somewhere in the trip
    s = ClockSample(sent, stamped_local + true_offset, sent + rtt)
    assert abs(s.offset_ms - true_offset) <= rtt // 2 + 1


def test_sync_takes_samples_and_corrects_now() -> None:
    local = [1_000_000]

    def tick() -> int:
        local[0] += 7
        return local[0]

    clock = ExchangeClock(local=tick)

    async def server() -> int:
        return local[0] + 10_000  # a venue 10 s ahead

    ev = asyncio.run(clock.sync(server, samples=4))
    assert ev.samples == 4 and ev.rtt_ms == 7
    assert abs(ev.offset_ms - 10_000) <= 4
    assert abs(clock.now_ms() - (local[0] + 10_000)) <= 12


def test_server_time_result_parsing() -> None:
    assert (
        server_ms_from_time_result({"timeSecond": "1688639403", "timeNano": "1688639403423213947"})
        == 1688639403423
    )
    assert server_ms_from_time_result({"timeSecond": "5"}) == 5000
    with pytest.raises(ValueError):
        server_ms_from_time_result({})


# -------------------------------------------------------------------- rate limit


class FakeTime:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@settings(max_examples=60, deadline=None)
@given(
    limit=st.integers(1, 12),
    gaps=st.lists(st.floats(0, 0.3), min_size=1, max_size=60),
)
def test_window_bucket_never_exceeds_limit_in_any_window(limit: int, gaps: list[float]) -> None:
    now = FakeTime()

    async def fake_sleep(d: float) -> None:
        now.t += d

    bucket = WindowBucket(limit, 1.0, now, fake_sleep)
    granted: list[float] = []

    async def run() -> None:
        for g in gaps:
            now.t += g
            await bucket.acquire()
            granted.append(now.t)
            bucket.release()

    asyncio.run(run())
    for i, t in enumerate(granted):
        in_window = [u for u in granted[: i + 1] if u + 1.0 > t]  # same arithmetic as the bucket
        assert len(in_window) <= limit
    assert len(granted) == len(gaps)


def test_bucket_waits_instead_of_failing() -> None:
    bucket = WindowBucket(5, 0.2)

    async def burst() -> float:
        loop = asyncio.get_running_loop()
        t0 = loop.time()

        async def one() -> None:
            await bucket.acquire()
            bucket.release()

        await asyncio.gather(*(one() for _ in range(15)))
        return loop.time() - t0

    elapsed = asyncio.run(burst())
    assert elapsed >= 0.39  # 15 tokens at 5 per 0.2 s: two full windows of waiting
    assert bucket.waits >= 1


def test_limits_follow_the_documented_table() -> None:
    assert ENDPOINT_LIMITS["/v5/order/create"] == 10
    assert ENDPOINT_LIMITS["/v5/order/realtime"] == 50
    rl = RateLimiter()
    assert rl.bucket("/v5/order/amend").limit == 10
    assert rl.bucket("/v5/execution/list").limit == 50
    assert RateLimiter(scale=0.8).bucket("/v5/order/create").limit == 8
    assert rl.ip.limit == 600


def test_exhausted_headers_close_the_endpoint_until_reset() -> None:
    now = FakeTime()
    rl = RateLimiter(clock=now, wall_ms=lambda: 1_000_000, margin_s=0.0)
    rl.observe(
        "/v5/order/create", {"X-Bapi-Limit-Status": "3", "X-Bapi-Limit-Reset-Timestamp": "1000500"}
    )
    assert rl.bucket("/v5/order/create").delay() == 0
    rl.observe(
        "/v5/order/create",
        {"x-bapi-limit-status": "0", "x-bapi-limit-reset-timestamp": "1000500"},
    )
    assert rl.bucket("/v5/order/create").delay() == pytest.approx(0.5)
    # the venue's reset is in venue time: a venue 200 ms ahead means 200 ms less to wait
    rl2 = RateLimiter(clock=now, wall_ms=lambda: 1_000_000, margin_s=0.0)
    rl2.penalise("/v5/order/cancel", 1_000_500, offset_ms=200)
    assert rl2.bucket("/v5/order/cancel").delay() == pytest.approx(0.3)
    assert rl2.bucket("/v5/order/create").delay() == 0  # other endpoints unaffected


# ------------------------------------------------------------------------- retry


@pytest.mark.parametrize(
    ("error", "action"),
    [
        (ApiError("/p", 10006, "Too many visits!"), Action.RATE_LIMITED),
        (ApiError("/p", 10002, "invalid request, check timestamp"), Action.CLOCK),
        (ApiError("/p", 10016, "server error"), Action.AMBIGUOUS),
        (ApiError("/p", 110007, "ab not enough for new order"), Action.FATAL),
        (ApiError("/p", 110017, "Reduce-only rule not satisfied"), Action.FATAL),
        (ApiError("/p", 10001, "params error"), Action.FATAL),
        (ApiError("/p", 10004, "error sign!"), Action.FATAL),
        (TransportError("/p", "ReadTimeout"), Action.AMBIGUOUS),
        (TransportError("/p", "HTTP status code is not 200.", 503), Action.AMBIGUOUS),
        (TransportError("/p", "too many", 429), Action.RATE_LIMITED),
        (TransportError("/p", "forbidden", 403), Action.FATAL),
        (TransportError("/p", "not found", 404), Action.FATAL),
    ],
)
def test_retry_classes(error: Any, action: Action) -> None:
    assert classify(error) is action


def test_backoff_grows_is_capped_and_jitter_is_seeded() -> None:
    a, b = Backoff(0.1, 2.0, seed=7), Backoff(0.1, 2.0, seed=7)
    delays = [a.delay(n) for n in range(10)]
    assert delays == [b.delay(n) for n in range(10)]
    for n, d in enumerate(delays):
        full = min(2.0, 0.1 * 2**n)
        assert full / 2 <= d <= full
    assert Backoff(0.1, 2.0, seed=8).delay(3) != delays[3]


# -------------------------------------------------------------------------- keys


def test_secret_never_shows_in_repr_str_format_or_pickle() -> None:
    keys = ApiKeys("TESTKEY123", Secret(SECRET), "test")
    for text in (
        repr(keys),
        str(keys),
        f"{keys}",
        repr(keys.secret),
        f"{keys.secret}",
        str([keys]),
        str({"k": keys.secret}),
    ):
        assert SECRET not in text
    with pytest.raises(TypeError):
        pickle.dumps(keys.secret)
    assert keys.secret.reveal() == SECRET


def test_keys_from_env_and_file(tmp_path: Path, caplog: Any) -> None:
    keys = load_keys(env={"BYBIT_API_KEY": " K1 ", "BYBIT_API_SECRET": SECRET})
    assert keys.key == "K1" and keys.secret.reveal() == SECRET and keys.source == "environment"
    with pytest.raises(KeysError) as err:
        load_keys(env={"BYBIT_API_KEY": "K1"})
    assert "BYBIT_API_SECRET" in str(err.value)
    f = tmp_path / "bybit.keys"
    f.write_text(f"# demo account\nkey = K2\n\nsecret={SECRET}\n")
    os.chmod(f, 0o644)
    with caplog.at_level(logging.WARNING):
        keys = load_keys(f)
    assert keys.key == "K2" and keys.secret.reveal() == SECRET
    assert "chmod 600" in caplog.text and SECRET not in caplog.text


def test_bad_key_files_fail_without_echoing_the_secret(tmp_path: Path) -> None:
    f = tmp_path / "k"
    f.write_text(f"key=K\n{SECRET}\n")  # secret pasted without "secret="
    with pytest.raises(KeysError) as err:
        load_keys(f)
    assert SECRET not in str(err.value) and ":2:" in str(err.value)
    f.write_text("key=K\n")
    with pytest.raises(KeysError, match="secret="):
        load_keys(f)
    with pytest.raises(KeysError, match="cannot read"):
        load_keys(tmp_path / "missing")


def test_ws_auth_signature_matches_the_reference_vector() -> None:
    keys = ApiKeys("TESTKEY", Secret(SECRET), "test")
    msg = auth_message(keys, 1700000001000)
    assert msg["args"] == [
        "TESTKEY",
        1700000001000,
        "8b63ea29a1a2eccb8a2c5bb06a8bdf08f359c6d61101a0b7d3cd829b84c65c5d",
    ]


# ------------------------------------------------------------------------ config


def test_demo_is_default_and_live_needs_allow_live() -> None:
    cfg = BybitConfig()
    assert cfg.environment == "demo" and cfg.venue_name == "bybit-demo"
    rest, public, private = cfg.urls()
    assert rest.startswith("https://") and "demo" in rest
    assert "demo" not in public and public.endswith("/v5/public/linear")  # mainnet market data
    assert "demo" in private and private.endswith("/v5/private")
    with pytest.raises(ConfigError, match="allow_live"):
        BybitConfig(environment="live")
    live = BybitConfig(environment="live", allow_live=True)
    assert "demo" not in "".join(live.urls())
    with pytest.raises(ConfigError):
        BybitConfig(environment="emulator")
    emu = BybitConfig(
        environment="emulator",
        rest_url="http://127.0.0.1:9/",
        public_ws_url="ws://127.0.0.1:9/v5/public/linear",
        private_ws_url="ws://127.0.0.1:9/v5/private",
    )
    assert emu.urls()[0] == "http://127.0.0.1:9"
    with pytest.raises(ConfigError):
        BybitConfig(timeframe="7m")
    assert BybitConfig(timeframe="4h").interval == "240"


def test_a_token_in_flight_counts_until_its_reply_and_a_window_after() -> None:
    now = FakeTime()
    bucket = WindowBucket(1, 1.0, now)

    async def run() -> None:
        await bucket.acquire()
        now.t = 5.0  # a slow request: 5 s in flight
        assert bucket.delay() > 0  # still held
        bucket.release()
        now.t = 5.5
        assert bucket.delay() == pytest.approx(0.5)  # one window from the *reply*

    asyncio.run(run())
