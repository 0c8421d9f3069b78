"""Threads of a process's own background work: a pool whose threads keep their database connections, a sweep run on
a clock, and the count of requests in flight that work able to wait defers to. Shared by the order worker and the
webhook sender."""

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future

from django.db import close_old_connections, connections

from order_system.forks import start_over_in_forked_children

logger = logging.getLogger(__name__)


class ThreadPool:
    """Up to `size` daemon threads, started as needed, each keeping its own database connection between jobs.

    Not concurrent.futures.ThreadPoolExecutor: its threads are joined at exit, so one hung processor would hold up
    a shutdown long after every order was handed back.
    """

    def __init__(self, size: int, name: str):
        self.size = size
        self._name = name
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._started = 0
        self._busy = 0

    def submit(self, function: Callable, *args) -> Future:
        future: Future = Future()
        with self._lock:
            self._busy += 1
            if self._started < self._busy:
                self._started += 1
                threading.Thread(target=self._work, name=f"{self._name}-{self._started}", daemon=True).start()
        self._jobs.put((future, function, args))
        return future

    def shutdown(self) -> None:
        """Let each thread finish its job, close its connections and exit."""
        for _ in range(self._started):
            self._jobs.put(None)

    def _work(self) -> None:
        try:
            while job := self._jobs.get():
                future, function, args = job
                if not future.set_running_or_notify_cancel():
                    self._done()
                    continue
                close_old_connections()
                try:
                    result = function(*args)
                except BaseException as exc:
                    self._done()
                    future.set_exception(exc)
                else:
                    self._done()
                    future.set_result(result)
        finally:
            connections.close_all()  # this thread's own connections; nobody else can close them

    def _done(self) -> None:
        """A thread is free again; counted before its future resolves, so whoever the future wakes finds it free."""
        _close_connections_quietly()
        with self._lock:
            self._busy -= 1


class RequestCount:
    """How many requests this process is answering now (CountRequests counts them); from any thread."""

    def __init__(self):
        self.start_over()
        start_over_in_forked_children(self)

    def start_over(self) -> None:
        """None yet; in a forked child, the parent's requests are not its own."""
        self._lock = threading.Lock()
        self._count = 0

    def __enter__(self) -> None:
        with self._lock:
            self._count += 1

    def __exit__(self, *exc_info) -> None:
        with self._lock:
            self._count -= 1

    def __bool__(self) -> bool:
        return self._count > 0


requests_in_flight = RequestCount()


def sweep_periodically(sweep: Callable[[], object], *, seconds: float, stop: threading.Event) -> None:
    """Run sweep() now and every `seconds` until stop is set; a failed sweep is logged and tried again."""
    try:
        while not stop.is_set():
            try:
                close_old_connections()
                sweep()
            except Exception:
                logger.exception("sweep %s failed; trying again in %ss", sweep, seconds)
            finally:
                _close_connections_quietly()
            stop.wait(seconds)
    finally:
        connections.close_all()  # this thread's own connections


def _close_connections_quietly() -> None:
    """close_old_connections() that can't take a thread down with it (the database may be gone for a while)."""
    try:
        close_old_connections()
    except Exception:
        logger.exception("closing a database connection failed")
