"""Error types of the Bybit adapter. None of them ever carries an API secret or signature."""

from __future__ import annotations


class BybitError(Exception):
    """Base class of everything the adapter raises."""


class ConfigError(BybitError):
    """A configuration that cannot be used (unknown environment, live without allow_live)."""


class KeysError(BybitError):
    """API keys missing or unreadable. The message names the source, never the values."""


class KeysRefused(KeysError):
    """The venue refused the API key or its signature (wrong secret, key of another venue)."""


class MalformedMessage(BybitError):
    """A venue message that cannot be converted; the stream logs it and goes on."""

    def __init__(self, topic: str, reason: str) -> None:
        super().__init__(f"malformed {topic or 'message'}: {reason}")
        self.topic, self.reason = topic, reason


class ApiError(BybitError):
    """A non-zero retCode from a REST call (HTTP 200 with an error envelope)."""

    def __init__(self, path: str, code: int, message: str) -> None:
        super().__init__(f"{path}: retCode {code}: {message}")
        self.path, self.code, self.message = path, code, message


class TransportError(BybitError):
    """No usable answer: connection error, timeout, HTTP status other than 200, bad JSON.

    ``status`` is the HTTP status when there was one (0 otherwise). Whether a request
    that ended like this reached the venue is unknown.
    """

    def __init__(self, path: str, detail: str, status: int = 0) -> None:
        super().__init__(f"{path}: {detail}" + (f" (HTTP {status})" if status else ""))
        self.path, self.detail, self.status = path, detail, status


class RetriesExhausted(BybitError):
    """A retryable failure that kept failing; carries the last error."""

    def __init__(self, path: str, attempts: int, last: BybitError) -> None:
        super().__init__(f"{path}: gave up after {attempts} attempts: {last}")
        self.path, self.attempts, self.last = path, attempts, last
