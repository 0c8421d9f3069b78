"""An example processor: charge each order through an HTTP payment service.

    ORDER_PROCESSOR=orders.examples.charge_payment PAYMENT_SERVICE_URL=https://payments.internal/charges make run

The service answers 2xx with {"transaction_id": ...}, 402 when the card is declined, 5xx when it is in trouble.
"""

import httpx
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from orders.processors import MAX_RETRY_DELAY_SECONDS, OrderSnapshot, Reject, Retry

if not settings.PAYMENT_SERVICE_URL:
    raise ImproperlyConfigured("orders.examples.charge_payment needs PAYMENT_SERVICE_URL")


async def charge_payment(order: OrderSnapshot) -> dict:
    """Charge the order's total; its transaction id becomes the order's result."""
    # One client per call: Celery runs each attempt on an event loop of its own, and a pooled connection can't move
    # between loops. No timeout of its own: ORDER_PROCESSING_TIMEOUT_SECONDS cancels a call that hangs.
    async with httpx.AsyncClient(timeout=None) as client:
        response = await client.post(
            settings.PAYMENT_SERVICE_URL,
            json={"order_id": str(order.order_id), "user_id": order.user_id, "amount": str(order.total_amount)},
            # The same key on every attempt, so a retry after a lost answer can't charge twice.
            headers={"Idempotency-Key": f"order-{order.order_id}"},
        )
    if response.status_code == 402:
        raise Reject(f"payment declined: {response.text[:200]}")
    if response.status_code >= 500:
        raise Retry(f"payment service answered {response.status_code}", delay=_seconds(response.headers))
    response.raise_for_status()  # any other 4xx is our mistake: a failed attempt, retried with backoff
    return {"transaction_id": response.json()["transaction_id"]}


def _seconds(headers: httpx.Headers) -> float | None:
    """Retry-After in seconds, when the service sends one that way; at most a day."""
    value = headers.get("Retry-After", "")
    return min(int(value), MAX_RETRY_DELAY_SECONDS) if value.isascii() and value.isdigit() else None
