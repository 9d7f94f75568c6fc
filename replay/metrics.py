"""Prometheus metrics of the live daemon (prometheus_client), off unless a port is given.

Each daemon owns its own registry, so several daemons (or tests) in one process never
collide. Served over HTTP on 127.0.0.1:PORT at /metrics.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from engine.events import (
    CLOSED_STATUSES,
    OPEN_STATUSES,
    CandleClosed,
    ClockOffset,
    EventBase,
    Fill,
    OrderAccepted,
    SubmitOrder,
)
from engine.instrument import MONEY_SCALE

STATUSES = (*OPEN_STATUSES, *CLOSED_STATUSES)
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)


class DaemonMetrics:
    """Every number the issue asks for, typed and named once."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.port = port
        self.host = host
        self.registry = r = CollectorRegistry()
        self.appended = Counter("replay_events_appended", "Events appended to the log", registry=r)
        self.log_lag = Gauge(
            "replay_log_lag_seconds", "Wall time minus the newest event's time", registry=r
        )
        self.latency = Histogram(
            "replay_candle_to_order_seconds",
            "Closed kline received to order sent",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.orders = Counter("replay_orders", "Order events by kind", ["kind"], registry=r)
        self.orders_by_status = Gauge(
            "replay_orders_by_status", "Orders of this session by status", ["status"], registry=r
        )
        self.position = Gauge("replay_position_lots", "Signed position in lots", registry=r)
        self.equity = Gauge("replay_equity_quote", "Equity at the last candle close", registry=r)
        self.realized = Gauge("replay_realized_pnl_quote", "Realized PnL", registry=r)
        self.corrections = Counter(
            "replay_reconciliation_corrections", "Correction events appended", registry=r
        )
        self.fill_lookups = Counter(
            "replay_fill_lookups",
            "Fills looked up over REST before a candle (the private-stream barrier fell short)",
            ["why"],
            registry=r,
        )
        self.reconnects = Counter(
            "replay_reconnects", "WebSocket reconnects", ["stream"], registry=r
        )
        self.rate_limit_waits = Gauge(
            "replay_rate_limit_waits", "Requests that waited for a rate-limit window", registry=r
        )
        self.clock_offset = Gauge(
            "replay_clock_offset_ms", "Venue clock minus local clock", registry=r
        )
        self.warmup = Gauge("replay_warmup_candles", "Candles back-filled at start", registry=r)

    def start(self) -> None:
        if self.port:
            start_http_server(self.port, addr=self.host, registry=self.registry)

    def observe(self, event: EventBase, state: Any, view: Any = None) -> None:
        """Update from one logged event (input or derived); cheap on the hot path."""
        kind = type(event)
        if kind is CandleClosed:
            self.log_lag.set(max(0.0, time.time() - event.ts / 1000))
            account = getattr(state, "ctx", None)
            if account is not None:
                self.position.set(getattr(account, "position_qty", 0))
                self.equity.set(getattr(account, "equity", 0) / MONEY_SCALE)
                self.realized.set(getattr(account, "balance", 0) / MONEY_SCALE)
            if view is not None:
                counts = dict.fromkeys(STATUSES, 0)
                for order in view.orders.values():
                    counts[order.status] = counts.get(order.status, 0) + 1
                for status, n in counts.items():
                    self.orders_by_status.labels(status=status).set(n)
        elif kind is ClockOffset:
            self.clock_offset.set(event.offset_ms)  # type: ignore[attr-defined]
        elif kind is SubmitOrder:
            self.orders.labels(kind="submitted").inc()
        elif kind is OrderAccepted:
            self.orders.labels(kind="accepted").inc()
        elif kind is Fill:
            self.orders.labels(kind="filled").inc()
