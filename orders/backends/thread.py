"""ThreadBackend: every serving process runs orders itself, on an OrderWorker, and sends their webhooks."""

import signal
import sys
import threading
from datetime import datetime
from uuid import UUID

from django.conf import settings
from django.utils import timezone

from order_system.forks import start_over_in_forked_children
from orders.backends import BaseBackend
from orders.processing import get_processor
from orders.worker import OrderWorker
from webhooks.sender import DeliverySender


class ThreadBackend(BaseBackend):
    """Orders are processed in the process that accepted them, and by any process the sweep lets help; the webhooks
    of their changes are sent by a DeliverySender beside the worker, so a slow endpoint never holds an order up."""

    def __init__(self):
        super().__init__()
        self._worker: OrderWorker | None = None
        self._sender: DeliverySender | None = None
        self._lock = threading.Lock()
        self._exit_watch: threading.Thread | None = None
        start_over_in_forked_children(self)

    def start_over(self) -> None:
        """In a forked child, which has none of the worker's threads: start() makes it a worker of its own, with its
        own queue and locks, and watches for its own exit."""
        self._worker = self._sender = None
        self._lock = threading.Lock()
        self._exit_watch = None

    def enqueue(self, order_id: UUID, *, not_before: datetime | None = None) -> None:
        if (worker := self._worker) is not None:
            delay = (not_before - timezone.now()).total_seconds() if not_before is not None else 0.0
            worker.submit(order_id, delay=delay)

    def start(self) -> None:
        """Run this process's worker until the process exits, then stop it gracefully."""
        with self._lock:
            if self._worker is None:
                self._worker = OrderWorker(
                    processor=get_processor(),
                    concurrency=settings.ORDER_CONCURRENCY,
                    threads=settings.ORDER_THREADS,
                    sweep_seconds=settings.ORDER_SWEEP_SECONDS,
                )
                self._sender = DeliverySender(
                    concurrency=settings.WEBHOOK_CONCURRENCY,
                    timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
                    sweep_seconds=settings.WEBHOOK_SWEEP_SECONDS,
                )
                if self._exit_watch is None:
                    self._exit_watch = threading.Thread(target=self._stop_at_exit, name="order-worker-exit")
                    self._exit_watch.start()
                on_main_thread = threading.current_thread() is threading.main_thread()
                if on_main_thread and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
                    # runserver dies on SIGTERM at once: exit normally instead, so that orders are handed back.
                    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            worker, sender = self._worker, self._sender
        worker.start()
        sender.start()

    def _stop_at_exit(self) -> None:
        """Stop the worker once the main thread has ended, as the process exits.

        Not atexit: granian's worker processes end like any multiprocessing child, through os._exit, which skips
        atexit; every exit, theirs included, still waits for this non-daemon thread.
        """
        threading.main_thread().join()
        self.stop()

    def stop(self) -> None:
        worker, self._worker = self._worker, None
        sender, self._sender = self._sender, None
        # Side by side: each gets the whole grace period, and a stop takes it once.
        stopping = [
            threading.Thread(target=part.stop, kwargs={"timeout": settings.ORDER_SHUTDOWN_GRACE_SECONDS})
            for part in (worker, sender)
            if part is not None
        ]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()

    def health(self) -> str | None:
        if settings.ORDER_WORKER_AUTOSTART is False:
            return None  # the web processes leave the work to `manage.py process_orders`
        worker = self._worker
        if worker is None or not worker.alive:
            return "the order worker of this process is not running"
        if worker.running_longer_than(settings.ORDER_LEASE_SECONDS) >= worker.concurrency:
            return "every order in flight here has run past its lease: the processor hangs"
        if (sender := self._sender) is None or not sender.alive:
            return "the webhook sender of this process is not running"
        return None

    def stats(self) -> dict[str, int]:
        worker = self._worker
        if worker is None or not worker.alive:
            return super().stats()
        return {"concurrency": worker.concurrency, "in_flight": worker.in_flight}
