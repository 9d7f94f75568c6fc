"""Bybit v5 linear perpetuals: REST through pybit, WebSocket streams through websockets.

Modules, one job each:

* ``config``    -- ``BybitConfig``: environment demo (default) | live (needs
  ``allow_live=True``) | emulator (explicit URLs), symbol, timeframe, recv_window, retry
  and reconnect timings. Demo/live URLs come from pybit's own constants.
* ``keys``      -- ``load_keys(keys_file=None)``: ``BYBIT_API_KEY``/``BYBIT_API_SECRET`` or a
  ``key=``/``secret=`` file; the secret is a ``Secret`` that never prints.
* ``clock``     -- ``ExchangeClock``: venue offset from ``/v5/market/time`` (lowest-RTT of
  several samples, RTT midpoint); request timestamps and WS auth expiries use it.
* ``ratelimit`` -- ``RateLimiter``: one rolling-window bucket per endpoint (documented
  limits) plus the per-IP bucket; requests wait; ``X-Bapi-Limit-*`` headers honoured.
* ``retry``     -- ``classify(error)``: RATE_LIMITED / CLOCK / AMBIGUOUS / FATAL, and
  ``Backoff`` (exponential, seeded jitter).
* ``rest``      -- ``BybitRest.call(path, params)``: pybit with its own retries off and our
  timestamp; ``pages()`` follows cursors.
* ``ws``        -- ``WsStream``: auth, subscribe, app pings, reconnect with backoff+jitter,
  ``on_connected(n)`` hook after each (re)subscription.
* ``convert``   -- Bybit objects -> engine events, exact fixed point; ``StreamConverter``
  dedupes executions and turns statuses into transitions exactly once.
* ``venue``     -- ``BybitVenue``: the ``adapters.protocol.Venue`` built from the above.
"""
