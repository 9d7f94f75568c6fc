"""``replay halt SESSION``: ask a session's daemon to halt, now or when it next resumes.

The request is a file (``STORE/control/SESSION.halt``) plus SIGUSR1 to the daemon that
holds the session's writer; a daemon that is not running finds the file when it resumes.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from eventstore import EventStore


def halt_file(store: Path, session: str) -> Path:
    return store / "control" / f"{session}.halt"


def request_halt(store: Path, session: str) -> str:
    """Ask a session's daemon to halt: now if it runs, else as soon as it resumes."""
    from eventstore import WriterLocked

    with EventStore(store) as es:
        stream = es.stream(session)  # StreamNotFound for a wrong name
        path = halt_file(store, session)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("halt requested\n")
        try:
            with stream.writer(durable=True):
                pass
        except WriterLocked as exc:
            if exc.pid:
                os.kill(exc.pid, signal.SIGUSR1)
                return f"asked the running daemon (pid {exc.pid}) to halt"
            return "the session's writer is busy; the halt is applied when it next checks"
    return "the session is not running; it will halt as soon as it resumes"
