"""Queue backends: how committed orders get processed. ORDER_QUEUE_BACKEND names one by dotted path, as Django's
EMAIL_BACKEND does; thread, celery and immediate are short names for the three here."""

from datetime import datetime
from uuid import UUID

from orders.processing import get_processor


class BaseBackend:
    """Everything about one way of processing orders: sending them, this process's share of the work, its health."""

    def __init__(self):
        # Every backend runs ORDER_PROCESSOR somewhere: a wrong path stops the process that loads the backend, at once.
        get_processor()

    def enqueue(self, order_id: UUID, *, not_before: datetime | None = None) -> None:
        """Send a committed order to be processed, not before not_before (a retry's backoff)."""
        raise NotImplementedError

    def start(self) -> None:
        """Start this process's share of the processing, if it has one; calling it again does nothing."""

    def stop(self) -> None:
        """Stop it: orders in flight get ORDER_SHUTDOWN_GRACE_SECONDS to finish, then are handed back."""

    def health(self) -> str | None:
        """Why orders sent from this process can't be processed now; None when they can."""
        return None

    def stats(self) -> dict[str, int]:
        """Orders this process runs now, and how many it may run at once (0: it runs none itself)."""
        return {"concurrency": 0, "in_flight": 0}
