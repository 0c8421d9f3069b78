"""The backend's DatabaseWrapper: each transaction, and each write outside one, holds the WriterLock."""

import re
from contextlib import contextmanager

from django.db.backends.sqlite3 import base

from order_system.sqlite.lock import WriterLock, writer_lock

# Statements that never write. Any other one is a write: BEGIN too, which starts every atomic block (with
# transaction_mode IMMEDIATE it takes SQLite's write lock at once).
_READS = re.compile(r"\s*(SELECT|EXPLAIN|PRAGMA)\b", re.IGNORECASE)


class DatabaseWrapper(base.DatabaseWrapper):
    """A SQLite connection whose writes wait for the WriterLock, and hold it until SQLite's transaction is over."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._writer_lock: WriterLock | None = None  # while this connection holds it
        # Django's hook around every statement, the ORM's and raw SQL alike: admin, migrations and commands included.
        self.execute_wrappers.append(self._in_turn)

    @contextmanager
    def hold_writer_lock(self, *, timeout: float):
        """Hold the writer lock, waiting at most timeout for it (TimeoutError): for a probe on a connection of its
        own. Not from inside a transaction, whose connection holds it already."""
        lock = writer_lock(self.settings_dict["NAME"])
        lock.acquire(timeout=timeout)
        try:
            yield
        finally:
            lock.release()

    def _in_turn(self, execute, sql, params, many, context):
        """Run a statement; one that may write, outside a transaction, waits for the writer lock first."""
        if (
            self._writer_lock is None
            and not self.connection.in_transaction
            and not _READS.match(sql)
            and not self.is_in_memory_db()  # no file to put the lock file beside, and no other process
        ):
            lock = writer_lock(self.settings_dict["NAME"])
            lock.acquire()
            self._writer_lock = lock
        try:
            return execute(sql, params, many, context)
        finally:
            self._release_writer_lock_outside_a_transaction()  # after a write in autocommit, or a BEGIN that failed

    def _commit(self):
        try:
            super()._commit()
        finally:
            # Before Django runs the on_commit callbacks: a slow one (a broker, inline processing) holds up no writer.
            self._release_writer_lock_outside_a_transaction()

    def _rollback(self):
        try:
            super()._rollback()
        finally:
            self._release_writer_lock_outside_a_transaction()

    def _close(self):
        try:
            super()._close()
        finally:
            if self._writer_lock is not None:  # closing ends the transaction
                self._release_writer_lock()

    def _release_writer_lock_outside_a_transaction(self) -> None:
        if self._writer_lock is not None and not self.connection.in_transaction:
            self._release_writer_lock()

    def _release_writer_lock(self) -> None:
        lock, self._writer_lock = self._writer_lock, None
        lock.release()
