"""An exclusive, OS-level lock on a job's output folder.

``fcntl.flock`` on ``DIR/.lock``: the kernel drops the lock when the holder's file
descriptor closes, which happens on every exit including ``kill -9``, so a lock is
never stale. The holder writes its pid and host into the file so that a refused run
can name it.
"""

import fcntl
import os
import socket
from pathlib import Path
from types import TracebackType
from typing import IO, Optional, Type

__all__ = ["FolderLock", "FolderLockedError", "LOCK_NAME"]

LOCK_NAME = ".lock"


class FolderLockedError(ValueError):
    """Another process holds the folder's lock."""


class FolderLock:
    """Holds ``folder/.lock`` exclusively (non-blocking).

    Args:
        folder: The job's output folder (created if needed).

    Examples::

        >>> with FolderLock(Path("job")):
        ...     ...  # only this process writes job/
    """

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LOCK_NAME
        self._handle: Optional[IO[str]] = None

    @property
    def held(self) -> bool:
        return self._handle is not None

    def acquire(self) -> None:
        """Takes the lock or raises :class:`FolderLockedError` naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise FolderLockedError(
                f"--output {self.path.parent} is in use by {holder}; wait for it to "
                "finish or stop it (its finished batches are kept)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Drops the lock (closing the file descriptor releases it)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> "FolderLock":
        self.acquire()
        return self

    def __exit__(
        self,
        kind: Optional[Type[BaseException]],
        error: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.release()
