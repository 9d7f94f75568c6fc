"""API keys: loaded from the environment or a file, and impossible to print by accident.

File format (``--keys FILE``): UTF-8 text with ``key=...`` and ``secret=...`` lines;
blank lines and lines starting with ``#`` are ignored, surrounding spaces stripped.
Without a file, ``BYBIT_API_KEY`` and ``BYBIT_API_SECRET`` are read. The secret lives
in a ``Secret`` whose repr/str are ``'***'``; only ``reveal()`` gives the value, and only
the signing code calls it.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from adapters.bybit.errors import KeysError

ENV_KEY: Final = "BYBIT_API_KEY"
ENV_SECRET: Final = "BYBIT_API_SECRET"


class Secret:
    """A string that hides itself from repr, str, format and pickling."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return "***"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))


class ApiKeys:
    """An API key (shown abbreviated) and its secret (never shown)."""

    __slots__ = ("key", "secret", "source")

    def __init__(self, key: str, secret: Secret, source: str) -> None:
        if not key or not secret.reveal():
            raise KeysError(f"empty API key or secret from {source}")
        self.key, self.secret, self.source = key, secret, source

    def __repr__(self) -> str:
        shown = self.key[:4] + "..." if len(self.key) > 8 else "***"
        return f"ApiKeys(key={shown}, secret=***, source={self.source})"

    __str__ = __repr__


def load_keys(keys_file: str | Path | None = None, env: Mapping[str, str] | None = None) -> ApiKeys:
    """Keys from ``keys_file`` if given, else from the environment (``env`` for tests)."""
    if keys_file is not None:
        return _from_file(Path(keys_file))
    env = os.environ if env is None else env
    key, secret = env.get(ENV_KEY, ""), env.get(ENV_SECRET, "")
    if not key or not secret:
        raise KeysError(f"set {ENV_KEY} and {ENV_SECRET}, or pass --keys FILE")
    return ApiKeys(key.strip(), Secret(secret.strip()), "environment")


def _from_file(path: Path) -> ApiKeys:
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except OSError as exc:
        raise KeysError(f"cannot read keys file {path}: {exc.strerror}") from None
    values: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        name = name.strip().lower()
        if not sep or name not in ("key", "secret"):
            # Never echo the line: it may be a secret pasted without "secret=".
            raise KeysError(f"{path}:{n}: expected 'key=...' or 'secret=...'")
        values[name] = value.strip()
    if "key" not in values or "secret" not in values:
        raise KeysError(f"{path}: needs both a 'key=' and a 'secret=' line")
    keys = ApiKeys(values["key"], Secret(values["secret"]), f"file {path}")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logging.getLogger(__name__).warning(
            "keys file %s is readable by group/others; chmod 600 it", path
        )
    return keys
