"""GroupCommit, which lets concurrent writes of one kind share a transaction."""

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connection, transaction

from order_system.forks import start_over_in_forked_children


class GroupCommit:
    """Concurrent writes of one kind, combined: one transaction, one lock hand-over and one commit for each batch.

    The first caller to arrive leads: it opens a write transaction and writes everything waiting by then, its own
    item first, while later callers wait. Once that commits, they get their outcomes and the oldest caller still
    waiting leads the next batch. At low load every write is a batch of one, as if alone; under load a batch is
    whatever arrived while the one before it was being written.
    """

    def __init__(self, write: Callable[[list], None], *, max_batch: int = 100):
        self._write = write  # writes its items in the write transaction it is called in
        self._max_batch = max_batch
        self._lock = threading.Lock()  # guards the two below and each waiting item's leads
        self._waiting: list[_Pending] = []
        self._leading = False  # a caller is writing batches; new callers wait for it
        start_over_in_forked_children(self)

    def start_over(self) -> None:
        """In a forked child: the callers waiting here, and the one leading them, are its parent's threads."""
        self._lock = threading.Lock()
        self._waiting = []
        self._leading = False

    def run(self, item) -> None:
        """Write item, alone or in a batch, committed when this returns; raises what writing it alone would raise."""
        if connection.in_atomic_block or not connection.get_autocommit():
            # Inside the caller's own transaction, which may still roll back: nobody else's item may go in there.
            self._write_alone(item)
            return
        pending = _Pending(item)
        with self._lock:
            self._waiting.append(pending)
            if not self._leading:
                self._leading = pending.leads = True
        try:
            if not pending.leads:
                pending.wake.wait()  # until its batch is written, or the lead is handed to it
            while not pending.taken:  # it leads; its item is first in line, so this is one batch
                self._write_waiting()
        finally:
            with self._lock:
                if not pending.taken:  # no transaction could be opened, or the wait was interrupted
                    self._waiting.remove(pending)
                if pending.leads:
                    self._hand_on_the_lead()
        if pending.error is not None:
            raise pending.error

    def _hand_on_the_lead(self) -> None:
        if self._waiting:
            self._waiting[0].leads = True
            self._waiting[0].wake.set()
        else:
            self._leading = False

    def _write_waiting(self) -> None:
        batch: list[_Pending] = []
        try:
            with transaction.atomic():  # the writer lock first, so what arrives while it is awaited joins the batch
                with self._lock:  # marked taken under the lock: an interrupted caller looks there before leaving
                    batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
                    for pending in batch:
                        pending.taken = True
                        pending.error = RuntimeError("interrupted before this write was committed")  # until it is
                self._write([pending.item for pending in batch])
            for pending in batch:
                pending.error = None
        except Exception as exc:
            if not batch:
                raise
            if len(batch) == 1:
                batch[0].error = exc
                return
            # One bad item (a duplicate key, say) fails the whole transaction: write each alone, so only it fails.
            for pending in batch:
                try:
                    self._write_alone(pending.item)
                    pending.error = None
                except Exception as exc:
                    pending.error = exc
        finally:
            for pending in batch:
                pending.wake.set()

    def _write_alone(self, item) -> None:
        with transaction.atomic():
            self._write([item])


@dataclass
class _Pending:
    """One caller's item while it waits; error is its outcome once a batch has taken it (None: committed)."""

    item: object
    taken: bool = False  # a batch has it; set under GroupCommit._lock
    leads: bool = False  # its caller writes the batches now
    error: Exception | None = None
    wake: threading.Event = field(default_factory=threading.Event)
