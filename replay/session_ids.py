"""Session ids: the one rule every command applies to a session name, and safe display.

A session id names a stream in the log and a folder (``STORE/reports/SESSION``,
``STORE/control/SESSION.halt``), and it is printed to terminals, so it is a plain
token: 1 to 128 characters from ``A-Z a-z 0-9 . _ -``, starting with a letter or a
digit, and never containing ``..``. That admits the generated ids (``ma_cross-
20250401-120000-2``) and sweep trial ids (``SWEEP-t0001``), and refuses paths
(``../x``, ``/tmp/x``), control characters (ESC, newline), empty names and bytes
that are not UTF-8. Every command that takes a session id checks it with
``check_session_id`` (on the command line through the ``SESSION_ID`` click type).
"""

from __future__ import annotations

import re
from typing import Final

import click

from replay.errors import InputError

MAX_LENGTH: Final = 128
RULE: Final = (
    f"1 to {MAX_LENGTH} characters from A-Z a-z 0-9 . _ -, starting with a letter or digit, "
    "without '..'"
)
_VALID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]+")


def shown(value: str, limit: int = 60) -> str:
    """``value`` as a quoted, printable literal (control characters and odd bytes escaped)."""
    text = ascii(value[:limit])
    return text if len(value) <= limit else f"{text[:-1]}…' ({len(value)} characters)"


def session_id_problem(value: str) -> str | None:
    """Why ``value`` is not a session id, or None if it is one."""
    if not value:
        return "it is empty"
    if len(value) > MAX_LENGTH:
        return f"it has {len(value)} characters (at most {MAX_LENGTH})"
    if ".." in value:
        return "it contains '..'"
    if not _VALID.fullmatch(value):
        return "it contains a character outside A-Z a-z 0-9 . _ - or does not begin with one"
    return None


def check_session_id(value: str, what: str = "session id") -> str:
    """``value`` if it is a valid session id; else ``InputError`` naming the rule."""
    problem = session_id_problem(value)
    if problem is not None:
        raise InputError(f"{what} {shown(value)} is not a valid session id: {problem}; use {RULE}")
    return value


def safe_stem(text: str, limit: int = 96) -> str:
    """A session-id prefix made from free text (a card name): unsafe runs become '-'."""
    stem = _UNSAFE.sub("-", text).replace("..", ".")
    stem = stem.lstrip("._-")[:limit].rstrip("._-")
    return stem or "card"


class SessionIdType(click.ParamType):
    """A click parameter type that accepts only valid session ids (exit 2 otherwise)."""

    name = "SESSION"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> str:
        text = str(value)
        problem = session_id_problem(text)
        if problem is not None:
            self.fail(f"{shown(text)} is not a valid session id: {problem}; use {RULE}", param, ctx)
        return text


SESSION_ID: Final = SessionIdType()
