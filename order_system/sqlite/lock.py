"""WriterLock: the lock a SQLite database's writers queue on, so that they take turns instead of sleeping.

SQLite lets one writer in at a time, and a connection that finds the database locked sleeps in growing steps of
milliseconds before it tries again. A lock hands over at once: a thread lock within a process, then an flock() on a
file beside the database between processes (the kernel frees it if a process dies).
"""

import fcntl
import os
import threading
import time

from order_system.forks import start_over_in_forked_children

_locks: dict[str, "WriterLock"] = {}


def writer_lock(database: str) -> "WriterLock":
    """This process's WriterLock for a database file."""
    return _locks.get(database) or _locks.setdefault(database, WriterLock(database))


class WriterLock:
    """One database's writers, of every thread and process, hold it one at a time."""

    def __init__(self, database: str):
        self._path = f"{database}.writelock"
        self._threads = threading.Lock()
        self._file: int | None = None  # opened at the first acquire, and kept open for the next ones
        start_over_in_forked_children(self)

    def acquire(self, *, timeout: float | None = None) -> None:
        """Wait for the lock: without a timeout for as long as it takes, with one at most that long (TimeoutError)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._threads.acquire(timeout=-1 if timeout is None else timeout):
            raise TimeoutError(f"another writer held the lock for {timeout} s")
        try:
            if self._file is None:
                self._file = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            _flock(self._file, deadline)
        except BaseException:
            self._threads.release()
            raise

    def release(self) -> None:
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._threads.release()

    def start_over(self) -> None:
        """In a forked child, which shares its parent's open lock file, and with it the flock: through it the child
        would take the lock while the parent holds it, and a copy left open would keep the lock held after the parent
        died holding it. So the child closes its copy, and opens a file of its own at its first write."""
        if self._file is not None:
            os.close(self._file)
            self._file = None
        self._threads = threading.Lock()  # the parent's may have been copied while one of its threads held it


def _flock(lock_file: int, deadline: float | None) -> None:
    """flock() has no timeout: without a deadline it blocks, with one it polls."""
    if deadline is None:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        return
    while True:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise TimeoutError("another process's writer held the lock") from None
            time.sleep(0.005)
