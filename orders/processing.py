"""The job every queue backend runs for one order: claim it, do the work, record the outcome."""

import random
import time
from uuid import UUID

from django.conf import settings

from orders.services import order_claim, order_complete


def process_order(order_id: UUID) -> None:
    """Process one order if it is still PENDING; a lost claim means another worker owns it."""
    if not order_claim(order_id=order_id):
        return
    simulate_work()
    order_complete(order_id=order_id)


def simulate_work() -> None:
    """Stand-in for payment and stock calls: sleep ORDER_PROCESSING_SECONDS."""
    low, high = settings.ORDER_PROCESSING_SECONDS
    if high > 0:
        time.sleep(random.uniform(low, high))
