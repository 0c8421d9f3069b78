"""CeleryBackend: Celery workers (make celery) run the orders; serving processes only publish them."""

from datetime import datetime
from uuid import UUID

from django.utils import timezone

from order_system.celery import app
from orders.backends import BaseBackend
from orders.tasks import process_order
from webhooks import wakeups
from webhooks.tasks import publish_due


class CeleryBackend(BaseBackend):
    """Each order is one task on the broker, and so is each webhook delivery; each Celery worker also runs the sweeps
    (orders/tasks.py)."""

    def __init__(self):
        super().__init__()
        # Every process publishes the deliveries it commits, as it publishes its orders: none runs a sender.
        wakeups.listen(self)

    def wake(self, deliveries) -> None:
        """Deliveries were committed or may have come due: publish a task for each that is due now."""
        publish_due(deliveries)

    def enqueue(self, order_id: UUID, *, not_before: datetime | None = None) -> None:
        # No ETA: a worker would hold the task unacknowledged in memory until then (docs/architecture.md says what that
        # costs). The order row keeps the retry's time, and a sweep sends it then.
        if not_before is None or not_before <= timezone.now():
            process_order.delay(str(order_id))

    def health(self) -> str | None:
        try:
            with app.connection_for_write(connect_timeout=2) as broker:
                broker.ensure_connection(max_retries=0)
        except Exception as exc:
            return f"broker unreachable: {exc}"
        return None
