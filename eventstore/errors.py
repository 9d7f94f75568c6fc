"""The event log's errors: one base class, each subclass carrying what a caller needs to act."""

from __future__ import annotations


class EventStoreError(Exception):
    """Base of every error the event log raises on purpose."""


class StreamNotFound(EventStoreError, KeyError):
    """No stream of this name exists in the store."""

    def __init__(self, name: str, path: str = "") -> None:
        super().__init__(f"no stream {name!r} in event store {path}".rstrip())
        self.name, self.path = name, path

    def __str__(self) -> str:  # KeyError would quote the message again
        return str(self.args[0])


class StreamExists(EventStoreError):
    """``create_stream`` was asked for a name that is already taken."""

    def __init__(self, name: str, path: str = "") -> None:
        super().__init__(f"stream {name!r} already exists in event store {path}".rstrip())
        self.name, self.path = name, path


class WriterLocked(EventStoreError):
    """Another writer (in this or another process) holds the stream's write lock."""

    def __init__(self, pid: int | None, stream: str = "", lock_path: str = "") -> None:
        holder = f"process {pid}" if pid is not None else "a process whose pid is unknown"
        super().__init__(f"stream {stream!r} is being written by {holder} (lock {lock_path})")
        self.pid, self.stream, self.lock_path = pid, stream, lock_path


class StoreReadOnly(EventStoreError):
    """A store on a read-only file system was opened for writing (reading works)."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"event store {path} is on a read-only file system: it can be read "
            "(sessions, verify, inspect, diff, report --out DIR), not written"
        )
        self.path = path


class LogCorruptError(EventStoreError):
    """The files of the store are damaged or disagree with themselves.

    ``seq`` names the first record found wrong when the damage is inside a stream.
    """

    def __init__(self, path: str, detail: str, seq: int | None = None) -> None:
        where = f" at seq {seq}" if seq is not None else ""
        super().__init__(f"event log {path} is corrupt{where}: {detail}")
        self.path, self.detail, self.seq = path, detail, seq
