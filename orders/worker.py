"""OrderWorker: a pool of daemon threads that takes order ids from one in-process FIFO queue."""

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from uuid import UUID

from django.db import close_old_connections, connections

logger = logging.getLogger(__name__)

# How long threads get, after the grace period, to hand back what they hold before stop() gives up on them.
RELEASE_SECONDS = 5.0


class OrderWorker:
    """FIFO worker pool fed by an in-process queue.Queue; it owns the queue, its threads and a recovery sweeper.

    processor(order_ids, abandon) does a batch of up to batch_size orders, oldest first, and should give back what it
    holds when the abandon event is set. sweep() returns up to sweep_batch ids that need work (recovered or due for
    retry), oldest first; it runs at start and every sweep_seconds after that. A full sweep of orders the last one did
    not return is part of a moving backlog: the next sweep runs as soon as that part is done, without a pause.
    """

    def __init__(
        self,
        *,
        workers: int,
        processor: Callable[[list[UUID], threading.Event], None],
        sweep: Callable[[], Iterable[UUID]],
        sweep_seconds: float,
        sweep_batch: int = 1000,
        batch_size: int = 1,
    ):
        self.workers = workers
        self._processor = processor
        self._batch_size = batch_size
        self._sweep = sweep
        self._sweep_seconds = sweep_seconds
        self._sweep_batch = sweep_batch
        self._queue: queue.Queue[UUID | None] = queue.Queue()
        self._queued: set[UUID] = set()  # waiting or in progress here, so nothing is queued twice
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._busy = 0
        self._pid = os.getpid()
        self._stopping = threading.Event()  # take no new orders
        self._abandon = threading.Event()  # the grace period is over: hand back what is in flight

    def start(self) -> None:
        """Start the threads and the sweeper; calling it again does nothing."""
        with self._lock:
            if self._pid != os.getpid():  # a fork copied this object but none of its threads: start afresh
                self._threads, self._queued, self._busy, self._pid = [], set(), 0, os.getpid()
            if self._threads or self._stopping.is_set():
                return
            self._threads = [
                threading.Thread(target=self._run, name=f"order-worker-{n}", daemon=True) for n in range(self.workers)
            ]
            sweeper = partial(
                sweep_forever, self._sweep_into_queue, seconds=self._sweep_seconds, stopping=self._stopping
            )
            self._threads.append(threading.Thread(target=sweeper, name="order-sweeper", daemon=True))
        for thread in self._threads:
            thread.start()

    def submit(self, order_id: UUID) -> bool:
        """Queue an order behind every order submitted before it, unless it is already queued here (False)."""
        with self._lock:
            if order_id in self._queued or self._stopping.is_set():
                return False
            self._queued.add(order_id)
        self._queue.put(order_id)
        return True

    def stop(self, *, timeout: float) -> None:
        """Take no new orders, give in-flight ones up to timeout to finish, then have the rest handed back."""
        self._stopping.set()
        for _ in range(self.workers):
            self._queue.put(None)
        self._join(timeout)
        self._abandon.set()
        self._join(RELEASE_SECONDS)

    @property
    def alive(self) -> int:
        """Processing threads still running."""
        return sum(thread.is_alive() for thread in self._threads if thread.name != "order-sweeper")

    @property
    def busy(self) -> int:
        """Processing threads working on an order right now."""
        return self._busy

    def _join(self, timeout: float) -> None:
        """Wait for the threads, all together, at most timeout seconds (no new thread: this runs at exit too)."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        try:
            self._work()
        finally:
            connections.close_all()  # this thread's own connections; nobody else can close them

    def _work(self) -> None:
        while batch := self._next_batch():
            with self._lock:
                self._busy += 1
            try:
                close_old_connections()
                self._processor(batch, self._abandon)
            except Exception:
                # The orders stay where they were and recovery picks them up; the thread must survive.
                logger.exception("order_ids=%s processing raised", ",".join(map(str, batch)))
            finally:
                with self._lock:
                    self._busy -= 1
                    self._queued.difference_update(batch)
                _close_connections_quietly()

    def _next_batch(self) -> list[UUID]:
        """The oldest queued order, and up to batch_size - 1 more already waiting behind it; empty once stopping."""
        order_id = self._queue.get()
        if order_id is None or self._stopping.is_set():
            return []
        batch = [order_id]
        while len(batch) < self._batch_size:
            try:
                order_id = self._queue.get_nowait()
            except queue.Empty:
                break
            if order_id is None:
                self._queue.put(None)  # another thread's signal to stop
                break
            batch.append(order_id)
        return [] if self._stopping.is_set() else batch  # stop() came while gathering: take nothing new

    def _sweep_into_queue(self) -> None:
        previous: set[UUID] = set()
        while not self._stopping.is_set():
            order_ids = list(self._sweep())
            for order_id in order_ids:
                self.submit(order_id)
            if len(order_ids) < self._sweep_batch or previous.issuperset(order_ids):
                return  # all of it, or a backlog that is not moving: the next sweep is on the clock
            previous = set(order_ids)
            deadline = time.monotonic() + self._sweep_seconds
            while self._queued and time.monotonic() < deadline and not self._stopping.wait(0.01):
                pass


def sweep_forever(sweep: Callable[[], object], *, seconds: float, stopping: threading.Event) -> None:
    """Run sweep() now and every `seconds` until stopping is set; a failed sweep is logged and tried again."""
    try:
        while not stopping.is_set():
            try:
                close_old_connections()
                sweep()
            except Exception:
                logger.exception("order sweep failed; trying again in %ss", seconds)
            finally:
                _close_connections_quietly()
            stopping.wait(seconds)
    finally:
        connections.close_all()  # this thread's own connections


def _close_connections_quietly() -> None:
    """close_old_connections() that can't take a thread down with it (the database may be gone for a while)."""
    try:
        close_old_connections()
    except Exception:
        logger.exception("closing a database connection failed")
