"""OrderWorker: a pool of daemon threads that takes order ids from one in-process FIFO queue."""

import logging
import queue
import threading
from collections.abc import Callable
from uuid import UUID

from django.db import close_old_connections

logger = logging.getLogger(__name__)


class OrderWorker:
    """FIFO worker pool fed by an in-process queue.Queue; it owns the queue and its threads."""

    def __init__(self, *, workers: int, processor: Callable[[UUID], None]):
        self.workers = workers
        self._processor = processor
        self._queue: queue.Queue[UUID | None] = queue.Queue()
        self._queued: set[UUID] = set()  # ids waiting or being processed here, so nothing is queued twice
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._busy = 0

    def start(self) -> None:
        """Start the threads; calling it again does nothing."""
        with self._lock:
            if self._threads:
                return
            self._threads = [
                threading.Thread(target=self._run, name=f"order-worker-{n}", daemon=True) for n in range(self.workers)
            ]
        for thread in self._threads:
            thread.start()

    def submit(self, order_id: UUID) -> None:
        """Queue an order behind every order submitted before it, unless it is already queued here."""
        with self._lock:
            if order_id in self._queued:
                return
            self._queued.add(order_id)
        self._queue.put(order_id)

    def stop(self, *, timeout: float) -> None:
        """Stop taking orders and wait up to timeout for the threads to finish what they hold."""
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            thread.join(timeout)

    def is_queued(self, order_id: UUID) -> bool:
        """Whether this worker already holds the order, waiting or in progress."""
        with self._lock:
            return order_id in self._queued

    @property
    def alive(self) -> int:
        return sum(thread.is_alive() for thread in self._threads)

    @property
    def busy(self) -> int:
        return self._busy

    def _run(self) -> None:
        while (order_id := self._queue.get()) is not None:
            with self._lock:
                self._busy += 1
            close_old_connections()
            try:
                self._processor(order_id)
            except Exception:
                # The order stays where it was; recovery picks it up. The thread must survive.
                logger.exception("order %s: processing raised", order_id)
            finally:
                close_old_connections()
                with self._lock:
                    self._busy -= 1
                    self._queued.discard(order_id)
