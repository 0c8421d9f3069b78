"""enqueue_order: the one place that knows which queue backend processes orders (ORDER_QUEUE_BACKEND)."""

import atexit
import logging
import signal
import sys
import threading
import time
from datetime import datetime
from uuid import UUID

from django.conf import settings
from django.utils import timezone

from orders.worker import OrderWorker

logger = logging.getLogger(__name__)

_worker: OrderWorker | None = None


def get_worker() -> OrderWorker:
    """This process's worker pool, created on first use."""
    global _worker
    if _worker is None:
        from orders.processing import SWEEP_BATCH, batch_size, process_orders, sweep

        _worker = OrderWorker(
            workers=settings.ORDER_WORKERS,
            processor=process_orders,
            sweep=sweep,
            sweep_seconds=settings.ORDER_SWEEP_SECONDS,
            sweep_batch=SWEEP_BATCH,
            batch_size=batch_size(),
        )
    return _worker


def start_worker() -> None:
    """Run this process's worker until the process exits, then stop it gracefully (thread backend only).

    ORDER_WORKER_AUTOSTART=0 wins: the web processes then leave the work to `manage.py process_orders`.
    """
    if settings.ORDER_QUEUE_BACKEND != "thread" or settings.ORDER_WORKER_AUTOSTART is False:
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
    """This process's worker threads: configured (0 unless in thread mode), alive and busy."""
    worker = _worker
    alive = worker.alive if worker is not None else 0
    configured = settings.ORDER_WORKERS if settings.ORDER_QUEUE_BACKEND == "thread" else 0
    return {"configured": configured, "alive": alive, "busy": worker.busy if alive else 0}


def queue_problem() -> str | None:
    """Why this process's queue backend cannot take orders now; None when it can."""
    if settings.ORDER_QUEUE_BACKEND == "celery":
        from order_system.celery import app

        try:
            with app.connection_for_write(connect_timeout=2) as broker:
                broker.ensure_connection(max_retries=0)
        except Exception as exc:
            return f"broker unreachable: {exc}"
    elif settings.ORDER_QUEUE_BACKEND == "thread" and settings.ORDER_WORKER_AUTOSTART is not False:
        stats = get_worker_stats()
        if stats["alive"] < stats["configured"]:
            return f"{stats['alive']} of {stats['configured']} worker threads alive"
    return None


def enqueue_order(order_id: UUID, *, not_before: datetime | None = None) -> None:
    """Send a committed order to the configured backend; not_before holds back a retry until its backoff is over.

    It never raises: the order is already committed, so a broker that is down must not turn its 201 into a 500.
    A sweep sends what could not be sent (Celery: after ORDER_REQUEUE_SECONDS).
    """
    try:
        _send(order_id, not_before)
    except Exception:
        logger.exception("order_id=%s could not be queued; the recovery sweep will send it again", order_id)


def _send(order_id: UUID, not_before: datetime | None) -> None:
    backend = settings.ORDER_QUEUE_BACKEND
    if backend == "celery":
        from orders.tasks import process_order

        process_order.apply_async((str(order_id),), eta=not_before)
    elif backend == "immediate":
        from orders.processing import NEVER_ABANDONED, process_order

        if not_before is not None:
            time.sleep(max(0.0, (not_before - timezone.now()).total_seconds()))
        process_order(order_id, NEVER_ABANDONED)
    elif _worker is not None and (not_before is None or not_before <= timezone.now()):
        _worker.submit(order_id)  # a retry not yet due waits for the worker's sweep
