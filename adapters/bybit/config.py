"""Typed configuration of the Bybit adapter: which environment, which URLs, which symbol.

Environments: ``demo`` (the default: Bybit's demo-trading REST and private WS, mainnet
public WS for market data), ``live`` (real money: refused unless ``allow_live=True``,
which only the CLI's explicit live flag sets) and ``emulator`` (tools/bybit_emulator on
127.0.0.1: every URL must be given). Demo and live addresses are taken from pybit's own
constants, so this module holds no hostnames of its own. The config never holds keys,
only where to read them from (``keys_file``; ``None`` = environment variables).
"""

from __future__ import annotations

from typing import Literal

import msgspec
from pybit import _http_manager as _pybit_http
from pybit import _websocket_stream as _pybit_ws

from adapters.bybit.errors import ConfigError

Environment = Literal["demo", "live", "emulator"]

#: Bybit kline interval strings by engine timeframe.
INTERVALS: dict[str, str] = {
    "1m": "1",
    "3m": "3",
    "5m": "5",
    "15m": "15",
    "30m": "30",
    "1h": "60",
    "2h": "120",
    "4h": "240",
    "6h": "360",
    "12h": "720",
    "1d": "D",
}


class BybitConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the adapter needs except the keys themselves."""

    environment: Environment = "demo"
    allow_live: bool = False
    symbol: str = "BTCUSDT"
    category: Literal["linear"] = "linear"
    timeframe: str = "1m"
    rest_url: str = ""  # "" = the environment's default
    public_ws_url: str = ""
    private_ws_url: str = ""
    #: orders over the WebSocket Trade API (REST while its socket is down); Bybit's demo
    #: venue does not offer it. ``trade_ws_url`` "" = the environment's default.
    trade_api: bool = False
    trade_ws_url: str = ""
    keys_file: str | None = None  # None: BYBIT_API_KEY / BYBIT_API_SECRET
    recv_window_ms: int = 5000
    http_timeout_s: float = 10.0
    ping_interval_s: float = 20.0
    clock_samples: int = 5
    clock_refresh_s: float = 300.0
    max_attempts: int = 6  # per request, for retryable failures
    backoff_base_s: float = 0.2
    backoff_max_s: float = 10.0
    reconnect_base_s: float = 0.5
    reconnect_max_s: float = 30.0
    jitter_seed: int = 0
    exec_dedupe_size: int = 10_000
    rate_limit_scale: float = 1.0  # < 1 keeps a margin under the documented limits

    def __post_init__(self) -> None:
        if self.environment not in ("demo", "live", "emulator"):
            raise ConfigError(f"unknown environment {self.environment!r}")
        if self.environment == "live" and not self.allow_live:
            raise ConfigError("environment 'live' trades real money and needs allow_live=True")
        if self.timeframe not in INTERVALS:
            raise ConfigError(f"unsupported timeframe {self.timeframe!r}; one of {list(INTERVALS)}")
        if self.environment == "emulator" and not (
            self.rest_url and self.public_ws_url and self.private_ws_url
        ):
            raise ConfigError(
                "environment 'emulator' needs rest_url, public_ws_url, private_ws_url"
            )
        if not 0 < self.rate_limit_scale <= 1:
            raise ConfigError("rate_limit_scale must be in (0, 1]")
        if self.trade_api and self.environment == "demo":
            raise ConfigError(
                "Bybit's demo venue has no WebSocket Trade API: drop --trade-api (orders go "
                "over REST)"
            )
        if self.trade_api and self.environment == "emulator" and not self.trade_ws_url:
            raise ConfigError("environment 'emulator' with trade_api needs trade_ws_url")

    @property
    def interval(self) -> str:
        """Bybit's kline interval string for ``timeframe``."""
        return INTERVALS[self.timeframe]

    @property
    def venue_name(self) -> str:
        """The ``SessionStarted.venue`` name of this environment."""
        return {"demo": "bybit-demo", "live": "bybit-live", "emulator": "emulator"}[
            self.environment
        ]

    def trade_url(self) -> str:
        """The Trade API's URL, or "" when orders go over REST only."""
        if not self.trade_api:
            return ""
        if self.trade_ws_url:
            return self.trade_ws_url
        return f"wss://{_pybit_ws.SUBDOMAIN_MAINNET}.{_pybit_ws.DOMAIN_MAIN}.{_pybit_ws.TLD_MAIN}/v5/trade"

    def urls(self) -> tuple[str, str, str]:
        """(REST base, public linear WS, private WS), explicit settings winning."""
        rest, pub, prv = _default_urls(self.environment)
        return (
            (self.rest_url or rest).rstrip("/"),
            self.public_ws_url or pub,
            self.private_ws_url or prv,
        )


def _default_urls(environment: Environment) -> tuple[str, str, str]:
    if environment == "emulator":
        return "", "", ""
    http_sub = (
        _pybit_http.DEMO_SUBDOMAIN_MAINNET
        if environment == "demo"
        else _pybit_http.SUBDOMAIN_MAINNET
    )
    ws_sub = _pybit_ws.DEMO_SUBDOMAIN_MAINNET if environment == "demo" else None
    rest = _pybit_http.HTTP_URL.format(
        SUBDOMAIN=http_sub, DOMAIN=_pybit_http.DOMAIN_MAIN, TLD=_pybit_http.TLD_MAIN
    )
    domain, tld = _pybit_ws.DOMAIN_MAIN, _pybit_ws.TLD_MAIN
    # Demo trading has no public stream of its own: market data comes from mainnet.
    public = f"wss://{_pybit_ws.SUBDOMAIN_MAINNET}.{domain}.{tld}/v5/public/linear"
    private = f"wss://{ws_sub or _pybit_ws.SUBDOMAIN_MAINNET}.{domain}.{tld}/v5/private"
    return rest, public, private
