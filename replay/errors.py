"""Errors of the application layer (bad options), distinct from card and data errors."""

from __future__ import annotations

from typing import Final

EXIT_CORRUPT: Final = 3
"""Exit code of every command that finds the store damaged or a stream's hash chain broken."""


class InputError(ValueError):
    """A command-line value that cannot be used; the message says which and why."""
