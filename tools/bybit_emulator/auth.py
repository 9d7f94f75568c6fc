"""Bybit v5 HMAC-SHA256 signatures: REST request checks and private WebSocket auth.

REST (reference §1.3): ``sign = hex(HMAC_SHA256(secret, timestamp + key + recv_window + payload))``
where ``payload`` is the raw query string (GET) or the raw body (POST), exactly as sent --
never a re-serialised or re-sorted version. Checks run in Bybit's order of severity: unknown
key (10003), timestamp outside the receive window (10002), wrong signature (10004).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

DEFAULT_RECV_WINDOW = 5000
#: A request timestamp may be at most this far in the server's future (reference §1.4).
MAX_FUTURE_MS = 1000


class AuthFailure(Exception):
    """A request or WS auth the emulator refused; ``code`` is Bybit's retCode."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def sign(secret: str, payload: str) -> str:
    """Lowercase hex HMAC-SHA256 of ``payload`` under ``secret``."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def rest_signature(secret: str, timestamp: str, key: str, recv_window: str, payload: str) -> str:
    """The X-BAPI-SIGN a client must send for this request."""
    return sign(secret, timestamp + key + recv_window + payload)


def verify_rest(
    headers: Mapping[str, str],
    payload: str,
    *,
    api_key: str,
    api_secret: str,
    server_ms: int,
) -> None:
    """Raise ``AuthFailure`` unless ``headers`` carry a valid, timely signature of ``payload``."""
    key = headers.get("X-BAPI-API-KEY", "")
    if not key or key != api_key:
        raise AuthFailure(10003, "API key is invalid.")
    ts_raw = headers.get("X-BAPI-TIMESTAMP", "")
    window_raw = headers.get("X-BAPI-RECV-WINDOW", "") or str(DEFAULT_RECV_WINDOW)
    try:
        ts = int(ts_raw)
        window = int(window_raw)
    except ValueError:
        raise AuthFailure(
            10002, "invalid request, timestamp or recv_window is not a number"
        ) from None
    if not (server_ms - window <= ts < server_ms + MAX_FUTURE_MS):
        raise AuthFailure(
            10002,
            "invalid request, please check your server timestamp or recv_window param. "
            f"req_timestamp[{ts}],server_timestamp[{server_ms}],recv_window[{window}]",
        )
    got = headers.get("X-BAPI-SIGN", "")
    want = rest_signature(api_secret, ts_raw, key, headers.get("X-BAPI-RECV-WINDOW", ""), payload)
    if not hmac.compare_digest(got.lower(), want):
        raise AuthFailure(10004, "Error sign, please check your signature generation algorithm.")


def ws_signature(secret: str, expires: int) -> str:
    """The private-stream auth signature for ``expires`` (ms)."""
    return sign(secret, f"GET/realtime{expires}")


def verify_ws_auth(args: object, *, api_key: str, api_secret: str, server_ms: int) -> None:
    """Check an ``{"op": "auth", "args": [key, expires, signature]}`` request.

    ``expires`` must lie in the server's future (reference §4.2). Bybit's upper bound on it is
    UNCONFIRMED; the emulator accepts any future value (pybit uses now + 1 s, Bybit's sample
    now + 10 s).
    """
    if not isinstance(args, list) or len(args) != 3:
        raise AuthFailure(10001, "Params Error")
    key, expires, signature = args
    if key != api_key:
        raise AuthFailure(10003, "Params Error")
    try:
        exp = int(expires)
    except (TypeError, ValueError):
        raise AuthFailure(10001, "Params Error") from None
    if exp <= server_ms:
        raise AuthFailure(10002, "Params Error")
    if not isinstance(signature, str) or not hmac.compare_digest(
        signature.lower(), ws_signature(api_secret, exp)
    ):
        raise AuthFailure(10004, "Params Error")
