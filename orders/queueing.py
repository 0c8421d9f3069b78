"""enqueue_order: the one place that knows where an order's work goes."""

import atexit
import signal
import sys
import threading
from uuid import UUID

from django.conf import settings

from orders.worker import OrderWorker

_worker: OrderWorker | None = None


def get_worker() -> OrderWorker:
    """This process's worker pool, created on first use."""
    global _worker
    if _worker is None:
        from orders.processing import process_order, sweep

        _worker = OrderWorker(
            workers=settings.ORDER_WORKERS,
            processor=process_order,
            sweep=sweep,
            sweep_seconds=settings.ORDER_SWEEP_SECONDS,
        )
    return _worker


def start_worker() -> None:
    """Run this process's worker until the process exits, then stop it gracefully; ORDER_WORKER_AUTOSTART=0 wins."""
    if settings.ORDER_WORKER_AUTOSTART is False:
        return
    get_worker().start()
    atexit.register(stop_worker)  # gunicorn, runserver and process_orders all exit through here
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and threading.current_thread() is threading.main_thread():
        # runserver dies on SIGTERM without running atexit; turn it into a normal exit so orders are handed back.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))


def stop_worker() -> None:
    """Stop this process's worker, if it has one: in-flight orders get ORDER_SHUTDOWN_GRACE_SECONDS."""
    global _worker
    worker, _worker = _worker, None
    if worker is not None:
        worker.stop(timeout=settings.ORDER_SHUTDOWN_GRACE_SECONDS)


def get_worker_stats() -> dict[str, int]:
    """Threads configured, alive and busy for this process's worker (alive 0 where none runs)."""
    worker = _worker
    alive = worker.alive if worker is not None else 0
    return {"configured": settings.ORDER_WORKERS, "alive": alive, "busy": worker.busy if alive else 0}


def enqueue_order(order_id: UUID) -> None:
    """Hand a committed order to this process's worker, if it runs one; otherwise a worker's sweep finds it."""
    if _worker is not None:
        _worker.submit(order_id)
