"""The job every queue backend runs for one order, and the sweep that finds orders needing work."""

import random
import threading
from datetime import timedelta
from uuid import UUID

from django.conf import settings

from orders.selectors import order_ids_due
from orders.services import (
    Claim,
    order_fail_attempt,
    order_release,
    orders_claim,
    orders_complete,
    orders_expire_leases,
    orders_requeue_stale,
)

# How many due orders one sweep queues at most, so a huge backlog never floods memory.
SWEEP_BATCH = 1000
# Orders one worker thread claims and completes together, at most, and the most work a batch may hold.
MAX_BATCH = 100
BATCH_WORK_SECONDS = 0.1
# For backends that never ask work to give up early (Celery finishes a running task before a warm shutdown).
NEVER_ABANDONED = threading.Event()


class SimulatedFailure(Exception):
    """A payment or stock failure, as ORDER_FAILURE_RATE simulates."""


class WorkAbandoned(Exception):
    """The worker is shutting down before this order's work finished."""


def process_order(order_id: UUID, abandon: threading.Event) -> None:
    """Claim the order, do the work, record the outcome; any exception is a failed attempt."""
    process_orders([order_id], abandon)


def process_orders(order_ids: list[UUID], abandon: threading.Event) -> None:
    """Claim the orders in one go, work on each in turn, and complete the successes together.

    Orders that are not due, already taken or cancelled are skipped; an exception in the work is a failed attempt.
    """
    claims, done, handled = orders_claim(order_ids=order_ids), [], 0
    try:
        for claim in claims:
            try:
                simulate_work(claim, abandon)
            except WorkAbandoned:
                order_release(claim=claim)
            except Exception as exc:
                order_fail_attempt(claim=claim, reason=f"{type(exc).__name__}: {exc}"[:1000])
            else:
                done.append(claim)
            handled += 1
    finally:
        try:
            orders_complete(claims=done)
        finally:
            # Only after an error (the database failing mid-batch): hand back the rest, as a shutdown would.
            for claim in claims[handled:]:
                order_release(claim=claim)


def batch_size() -> int:
    """How many orders a worker thread claims at once.

    Batching saves database round trips, but an order never waits behind more than BATCH_WORK_SECONDS of other
    orders' work in its batch, so with seconds of work per order every thread takes one at a time.
    """
    longest = settings.ORDER_PROCESSING_SECONDS[1]
    return MAX_BATCH if longest == 0 else max(1, min(MAX_BATCH, int(BATCH_WORK_SECONDS / longest)))


def simulate_work(claim: Claim, abandon: threading.Event) -> None:
    """Stand-in for payment and stock calls: ORDER_PROCESSING_SECONDS of work that fails at ORDER_FAILURE_RATE."""
    seed = settings.ORDER_RANDOM_SEED
    # Seeded per attempt, so a seeded run gives each attempt the same outcome whichever thread runs it.
    rng = random.Random(f"{seed}:{claim.order_id}:{claim.attempt}") if seed is not None else random
    low, high = settings.ORDER_PROCESSING_SECONDS
    if abandon.wait(rng.uniform(low, high)):
        raise WorkAbandoned()
    if rng.random() < settings.ORDER_FAILURE_RATE:
        raise SimulatedFailure("payment declined (simulated)")


def sweep() -> list[UUID]:
    """Thread backend: recover claims whose worker died, then list PENDING orders that are due, oldest first."""
    orders_expire_leases()
    return order_ids_due(limit=SWEEP_BATCH)


def sweep_lost() -> None:
    """Celery backend: recover claims whose worker died, and send again what the broker seems to have lost."""
    orders_expire_leases()
    orders_requeue_stale(older_than=timedelta(seconds=settings.ORDER_REQUEUE_SECONDS), limit=SWEEP_BATCH)
