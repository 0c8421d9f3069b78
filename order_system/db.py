"""write_transaction(): transaction.atomic() for the hot writes, with SQLite writers taking turns on a lock."""

import fcntl
import os
import threading
from contextlib import contextmanager

from django.db import connection, transaction

# SQLite lets one writer in at a time, and a connection that finds the database locked sleeps in growing steps of
# milliseconds before it tries again. Writers queue on locks instead, which hand over at once: a thread lock within a
# process, and an flock() on a file beside the database between processes (the kernel frees it if a process dies).
_thread_lock = threading.Lock()
_lock_files: dict[str, int] = {}


def _after_fork_in_child() -> None:
    """A forked child shares its parent's open files, and so their flocks, and may copy a held thread lock."""
    global _thread_lock
    _thread_lock = threading.Lock()
    _lock_files.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


@contextmanager
def write_transaction():
    """A transaction that will write; on SQLite, writers of every process enter it one at a time.

    The locks are let go as soon as the transaction commits, before its on_commit callbacks run (they may publish to
    a broker, or process the order inline), so no callback holds up the other writers.
    """
    if connection.vendor != "sqlite" or connection.is_in_memory_db() or connection.in_atomic_block:
        with transaction.atomic():
            yield
        return
    thread_lock, lock_file = _thread_lock, _lock_file(str(connection.settings_dict["NAME"]))
    thread_lock.acquire()
    fcntl.flock(lock_file, fcntl.LOCK_EX)
    held = True

    def release() -> None:
        nonlocal held
        if held:
            held = False
            fcntl.flock(lock_file, fcntl.LOCK_UN)
            thread_lock.release()

    try:
        with transaction.atomic():
            transaction.on_commit(release)  # the first callback, so it runs before any other
            yield
    finally:
        release()  # after a rollback, or if the commit itself failed


def _lock_file(database: str) -> int:
    """One open lock file per database and process; it is never closed, as closing would drop the lock."""
    if database not in _lock_files:
        _lock_files[database] = os.open(f"{database}.writelock", os.O_RDWR | os.O_CREAT, 0o600)
    return _lock_files[database]
