"""Celery tasks for ORDER_QUEUE_BACKEND=celery: each webhook delivery is one task, published once it is due."""

import asyncio
import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from order_system.celery import DURABLE_TASK
from webhooks.addresses import guarded_client
from webhooks.models import DeliveryQuerySet
from webhooks.posting import post_attempt
from webhooks.services import Attempt, Outcome, deliveries_claim, deliveries_send_due, delivery_record_attempt

logger = logging.getLogger(__name__)

# How many due deliveries one sweep publishes at most, so a huge backlog never floods memory.
SWEEP_BATCH = 1000


# The lease claim turns a second message for a delivery being sent, finished, or not due yet into a no-op.
@shared_task(**DURABLE_TASK)
def send_webhook(delivery_id: int) -> None:
    """One attempt at one delivery, with the in-process sender's claim, request and outcome."""
    attempt_delivery(delivery_id)


def attempt_delivery(delivery_id: int) -> None:
    """Claim the delivery if it is due, send it, record how it went."""
    claimed = deliveries_claim(limit=1, delivery_ids=[delivery_id])
    if not claimed:
        return  # being sent, finished, or waiting for an earlier event of its order: that one's end publishes it
    (attempt,) = claimed
    # Hold no connection while the endpoint answers, as processing.attempt_order holds none while its order runs.
    close_old_connections()
    outcome = asyncio.run(_post(attempt))
    # Once it is finished, the commit releases its order's next event, and this process's CeleryBackend publishes it.
    delivery_record_attempt(attempt=attempt, status_code=outcome.status_code, error=outcome.error)


async def _post(attempt: Attempt) -> Outcome:
    """The attempt, sent as the in-process sender sends it.

    The async client under asyncio.run, not a blocking one: WEBHOOK_TIMEOUT_SECONDS must bound the whole request, and
    httpx's own timeouts bound each read, so a slow trickle would outlive the lease and another worker would send it
    meanwhile.
    """
    async with guarded_client(timeout=settings.WEBHOOK_TIMEOUT_SECONDS) as client:
        return await post_attempt(client, attempt, timeout=settings.WEBHOOK_TIMEOUT_SECONDS)


def publish_due(deliveries: DeliveryQuerySet) -> None:
    """Publish send_webhook for each of these deliveries that is due now; a pair's later events wait in the database
    for their turn, not on the broker.

    It never raises: the deliveries are committed, and what could not be published a sweep publishes (after
    ORDER_REQUEUE_SECONDS).
    """
    try:
        for delivery_id in deliveries.due(timezone.now()).order_by("pk").values_list("pk", flat=True):
            send_webhook.delay(delivery_id)
    except Exception:
        logger.exception("webhook deliveries could not be published; the sweep will send them")


def send_due_deliveries() -> None:
    """The Celery workers' webhook sweep: publish the retries whose backoff is over, the deliveries whose lease expired
    (their worker died) and those whose message the broker seems to have lost."""
    deliveries_send_due(lost_after=timedelta(seconds=settings.ORDER_REQUEUE_SECONDS), limit=SWEEP_BATCH)
