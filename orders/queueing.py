"""enqueue_order: the one place that knows where an order's work goes."""

from uuid import UUID

from django.conf import settings

from orders.worker import OrderWorker

_worker: OrderWorker | None = None


def get_worker() -> OrderWorker:
    """This process's worker pool, created on first use."""
    global _worker
    if _worker is None:
        from orders.processing import process_order

        _worker = OrderWorker(workers=settings.ORDER_WORKERS, processor=process_order)
    return _worker


def enqueue_order(order_id: UUID) -> None:
    """Hand a committed order to this process's worker, if it runs one; otherwise recovery finds it PENDING."""
    if _worker is not None:
        _worker.submit(order_id)
