"""Errors the emulator answers with a Bybit retCode (HTTP 200 + envelope, as Bybit does)."""

from __future__ import annotations


class ApiError(Exception):
    """A request the emulated venue refuses; ``code`` is Bybit's retCode, ``message`` retMsg."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def param_error(message: str) -> ApiError:
    """retCode 10001, Bybit's catch-all for malformed or out-of-filter parameters."""
    return ApiError(10001, f"params error: {message}")
