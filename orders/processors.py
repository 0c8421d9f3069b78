"""The processor contract: the order snapshot a processor gets, Reject and Retry, and the seed's simulation.

ORDER_PROCESSOR names a callable, async or plain, that takes one OrderSnapshot. Returning (None or a JSON-serialisable
dict, stored as the order's result) completes the order. Reject fails it at once; Retry, any other exception or
running past ORDER_PROCESSING_TIMEOUT_SECONDS is a failed attempt, retried with backoff up to ORDER_MAX_ATTEMPTS.
"""

import asyncio
import random
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from django.conf import settings


@dataclass(frozen=True)
class OrderSnapshot:
    """The order as it was claimed for this attempt; read-only, so no processor can write it back by accident."""

    order_id: UUID
    user_id: str
    item_ids: tuple[int, ...]
    total_amount: Decimal
    attempt: int  # 1 for the first try
    created_at: datetime


class Reject(Exception):
    """This order can never succeed (a declined card): FAILED at once, with this reason, and no retry."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# The longest a Retry may ask to wait.
MAX_RETRY_DELAY_SECONDS = 24 * 60 * 60


class Retry(Exception):
    """This attempt failed and a later one may not (a gateway timeout); delay, in seconds, overrides the backoff."""

    def __init__(self, reason: str, delay: float | None = None):
        if delay is not None and not 0 <= delay <= MAX_RETRY_DELAY_SECONDS:
            raise ValueError(f"Retry delay must be 0 to {MAX_RETRY_DELAY_SECONDS} seconds, not {delay!r}")
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


class SimulatedFailure(Exception):
    """A payment or stock failure, as ORDER_FAILURE_RATE simulates."""


async def simulate(order: OrderSnapshot) -> None:
    """The seed's work: ORDER_PROCESSING_SECONDS of waiting that fails at ORDER_FAILURE_RATE."""
    seed = settings.ORDER_RANDOM_SEED
    # Seeded per attempt, so a seeded run gives each attempt the same outcome whichever process runs it.
    rng = random.Random(f"{seed}:{order.order_id}:{order.attempt}") if seed is not None else random
    low, high = settings.ORDER_PROCESSING_SECONDS
    if seconds := rng.uniform(low, high):
        await asyncio.sleep(seconds)
    if rng.random() < settings.ORDER_FAILURE_RATE:
        raise SimulatedFailure("payment declined (simulated)")
