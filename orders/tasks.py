"""Celery tasks for ORDER_QUEUE_BACKEND=celery: thin wrappers around the services the thread worker uses too."""

import threading
from uuid import UUID

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown
from django.conf import settings

from order_system.celery import DURABLE_TASK
from order_system.threads import sweep_periodically
from orders import processing
from webhooks.services import STRANDED_SWEEP_SECONDS, deliveries_release_stranded
from webhooks.tasks import send_due_deliveries

_stopping = threading.Event()


@shared_task(**DURABLE_TASK)
def process_order(order_id: str) -> None:
    """Claim, run ORDER_PROCESSOR, record: the same job as the thread worker's, with the same retries and backoff."""
    processing.attempt_order(UUID(order_id))


@worker_ready.connect
def start_recovery_sweep(**_) -> None:
    """Every Celery worker recovers dead claims and sends what has come due at start, then every ORDER_SWEEP_SECONDS;
    beside it, it publishes the webhook deliveries that have come due, every WEBHOOK_SWEEP_SECONDS, and releases
    stranded ones, as the in-process sender does."""
    sweeps = {
        "order-sweeper": (processing.recover_and_send_due, settings.ORDER_SWEEP_SECONDS),
        "webhook-sweeper": (send_due_deliveries, settings.WEBHOOK_SWEEP_SECONDS),
        "webhook-releaser": (deliveries_release_stranded, STRANDED_SWEEP_SECONDS),
    }
    for name, (sweep, seconds) in sweeps.items():
        sweeper = threading.Thread(
            target=sweep_periodically,
            args=(sweep,),
            kwargs={"seconds": seconds, "stop": _stopping},
            name=name,
            daemon=True,
        )
        sweeper.start()


@worker_shutdown.connect
def stop_recovery_sweep(**_) -> None:
    """A warm shutdown ends the sweepers' loops too."""
    _stopping.set()
