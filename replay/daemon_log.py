"""The daemon's own log lines: plain text, or one JSON object per line (``--log-json``).

Every JSON line carries the session id and the newest seq of the session's event log
(``LAST_SEQ``, which the daemon updates on each append), so a line can be matched to
the events around it.
"""

from __future__ import annotations

import json
import logging

#: The newest seq the daemon appended (the JSON log formatter stamps it on every line).
LAST_SEQ: list[int] = [0]


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the session id and the log's newest seq."""

    def __init__(self, session: str) -> None:
        super().__init__()
        self.session = session

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "session": self.session,
            "msg": record.getMessage(),
        }
        data["seq"] = getattr(record, "seq", LAST_SEQ[0])
        return json.dumps(data)


def setup_logging(session: str, as_json: bool, level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter(session)
        if as_json
        else logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
