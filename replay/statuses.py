"""A session's status as ``sessions`` and ``verify`` report it: the stored one, made true.

The runners store ``running`` when a session starts and ``complete`` (backtest),
``stopped`` (daemon) or ``interrupted`` (Ctrl-C, SIGTERM) when it ends. A process
that dies without ending (SIGKILL, a crash, a full disk) leaves ``running`` behind,
so a stored ``running`` is believed only while a live process holds the stream's
writer lock (the kernel drops the lock of a dead process); otherwise the session
is ``crashed``. A crashed daemon session resumes with the same ``--session``.
"""

from __future__ import annotations

from typing import Final

from eventstore import Stream

FINISHED: Final = frozenset({"complete", "stopped"})
CRASHED: Final = "crashed"


def session_status(stream: Stream) -> str:
    """complete / stopped / interrupted / running / crashed (or whatever else is stored)."""
    status = stream.meta.get("status", "?")
    if status == "running" and not stream.has_writer():
        return CRASHED
    return status
