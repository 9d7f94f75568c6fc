"""One writer per stream: an exclusive ``flock`` on a per-stream file that holds the owner's pid.

``flock`` locks belong to an open file description, so a second writer is refused
whether it lives in another process or in this one, and the kernel releases the
lock when its holder dies (even by SIGKILL): a crashed writer never leaves a
stale lock behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from pathlib import Path

from eventstore.errors import EventStoreError, WriterLocked

_TRIES = 20  # 20 x 5 ms


class WriterLock:
    """The held write lock of one stream; ``release`` (or process exit) gives it back."""

    __slots__ = ("_fd", "path", "stream")

    def __init__(self, path: Path, stream: str) -> None:
        self.path, self.stream = path, stream
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        # A few tries: ``writer_alive`` holds a shared lock for microseconds, and a writer
        # starting at that instant must not mistake the probe for another writer.
        for attempt in range(_TRIES):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                busy = exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
                if busy and attempt < _TRIES - 1:
                    time.sleep(0.005)
                    continue
                os.close(fd)
                if busy:
                    raise WriterLocked(_holder_pid(path), stream, str(path)) from None
                raise EventStoreError(f"cannot lock {path}: {exc}") from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Unlock; the file stays (deleting it would race with a new locker)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)


def writer_alive(path: Path) -> bool:
    """Whether a live process holds the write lock at ``path``, without taking it.

    Read-only (works on a read-only store): a shared lock that cannot be had means a
    writer holds it; the kernel drops a dead writer's lock, so a writer killed by
    SIGKILL or a crash reads as gone.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise EventStoreError(f"cannot probe {path}: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return True
        raise EventStoreError(f"cannot probe {path}: {exc}") from exc
    finally:
        os.close(fd)  # closing also drops the shared lock
    return False


def _holder_pid(path: Path) -> int | None:
    """The pid the holder wrote; it writes right after locking, so retry briefly."""
    for _ in range(50):
        try:
            text = path.read_text().strip()
        except OSError:
            text = ""
        if text.isdigit():
            return int(text)
        time.sleep(0.002)
    return None
