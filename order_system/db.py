"""write_transaction(): transaction.atomic() for the hot writes, with SQLite writers taking turns on a lock."""

import fcntl
import os
import threading
from contextlib import contextmanager

from django.db import connection, transaction

# SQLite lets one writer in at a time, and a connection that finds the database locked sleeps in growing steps of
# milliseconds before it tries again. Writers queue on locks instead, which hand over at once: a thread lock within a
# process, and an flock() on a file beside the database between processes (the kernel frees it if a process dies).
_thread_lock = threading.RLock()
_lock_files: dict[str, int] = {}
# A forked child shares its parent's open file, and so its flock: it must open its own.
os.register_at_fork(after_in_child=_lock_files.clear)


@contextmanager
def write_transaction():
    """A transaction that will write; on SQLite, writers of every process enter it one at a time."""
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        with transaction.atomic():
            yield
        return
    with _thread_lock:
        lock_file = _lock_file(str(connection.settings_dict["NAME"]))
        outermost = not connection.in_atomic_block
        if outermost:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            with transaction.atomic():
                yield
        finally:
            if outermost:
                fcntl.flock(lock_file, fcntl.LOCK_UN)


def _lock_file(database: str) -> int:
    """One open lock file per database and process; it is never closed, as closing would drop the lock."""
    if database not in _lock_files:
        _lock_files[database] = os.open(f"{database}.writelock", os.O_RDWR | os.O_CREAT, 0o600)
    return _lock_files[database]
