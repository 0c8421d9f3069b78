"""enqueue_order, and the queue backend ORDER_QUEUE_BACKEND names, loaded by dotted path as Django loads its own."""

import logging
from datetime import datetime
from functools import cache
from uuid import UUID

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


def get_backend():
    """This process's queue backend, an orders.backends.BaseBackend; one instance per configured path."""
    name = settings.ORDER_QUEUE_BACKEND
    return _load_backend(settings.QUEUE_BACKENDS.get(name, name))


@cache
def _load_backend(path: str):
    try:
        backend_class = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"ORDER_QUEUE_BACKEND {path!r} can't be imported: {exc}") from exc
    if not isinstance(backend_class, type) or not all(
        callable(getattr(backend_class, method, None)) for method in ("enqueue", "start", "stop", "health", "stats")
    ):
        raise ImproperlyConfigured(f"ORDER_QUEUE_BACKEND {path!r} is not a queue backend class (orders.backends)")
    return backend_class()


def enqueue_order(order_id: UUID, *, not_before: datetime | None = None) -> None:
    """Send a committed order to the configured backend; not_before holds back a retry until its backoff is over.

    It never raises: the order is already committed, so a broker that is down must not turn its 201 into a 500.
    A sweep sends what could not be sent (Celery: after ORDER_REQUEUE_SECONDS).
    """
    try:
        get_backend().enqueue(order_id, not_before=not_before)
    except Exception:
        logger.exception("order_id=%s could not be queued; the recovery sweep will send it again", order_id)
