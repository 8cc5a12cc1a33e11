"""One watchdog per data directory: an OS file lock held for the watchdog's whole life.

``flock`` locks belong to the open file, so the kernel drops the lock when the process dies
however it dies: a crash cannot leave a stale lock. The file's content is the holder's pid,
for the message a second watchdog prints. The descriptor is not inherited by the child
(Python opens files non-inheritable), so an orphaned server cannot keep the lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

__all__ = ["InstanceLock"]


class InstanceLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock without waiting; False if another process holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def holder(self) -> int | None:
        """The pid written by the process holding the lock, if it has written it yet."""
        try:
            text = self.path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return int(text) if text.isdigit() else None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = None
