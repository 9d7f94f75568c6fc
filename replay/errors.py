"""Errors of the application layer (bad options), distinct from card and data errors."""

from __future__ import annotations


class InputError(ValueError):
    """A command-line value that cannot be used; the message says which and why."""
