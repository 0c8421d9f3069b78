"""write_transaction(): transaction.atomic() for the hot writes, with SQLite writers of one process taking turns."""

import threading
from contextlib import contextmanager

from django.db import connection, transaction

# SQLite lets one writer in at a time, and a waiting connection sleeps in growing steps of milliseconds. Threads of one
# process queue here instead, where the lock passes to the next one at once.
_sqlite_writers = threading.RLock()


@contextmanager
def write_transaction():
    """A transaction that will write; on SQLite, threads of this process enter it one at a time."""
    if connection.vendor != "sqlite":
        with transaction.atomic():
            yield
        return
    with _sqlite_writers, transaction.atomic():
        yield
