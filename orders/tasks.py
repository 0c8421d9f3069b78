"""Celery tasks for ORDER_QUEUE_BACKEND=celery: thin wrappers around the services the thread worker uses too."""

import threading
from uuid import UUID

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import DatabaseError

from order_system.threads import sweep_periodically
from orders import processing

_stopping = threading.Event()


# Acknowledged only after it ran, and given back if the worker process dies, so a killed worker's order is
# delivered again; the conditional claim turns a second delivery of a claimed or finished order into a no-op.
# A database that is briefly unreachable is waited out here instead of leaving the order to the requeue sweep.
@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    autoretry_for=(DatabaseError,),
    retry_backoff=True,
    max_retries=8,
)
def process_order(order_id: str) -> None:
    """Claim, run ORDER_PROCESSOR, record: the same job as the thread worker's, with the same retries and backoff."""
    processing.attempt_order(UUID(order_id))


@worker_ready.connect
def start_recovery_sweep(**_) -> None:
    """Every Celery worker recovers dead claims and sends what has come due at start, then every ORDER_SWEEP_SECONDS."""
    sweeper = threading.Thread(
        target=sweep_periodically,
        args=(processing.recover_and_send_due,),
        kwargs={"seconds": settings.ORDER_SWEEP_SECONDS, "stop": _stopping},
        name="order-sweeper",
        daemon=True,
    )
    sweeper.start()


@worker_shutdown.connect
def stop_recovery_sweep(**_) -> None:
    """A warm shutdown ends the sweeper's loop too."""
    _stopping.set()
