"""App config: loads the queue backend (and the processor); serving processes start it in order_system.wsgi."""

from django.apps import AppConfig
from django.conf import settings


class OrdersConfig(AppConfig):
    """Orders app; ready() is idempotent and touches no database."""

    name = "orders"

    def ready(self) -> None:
        # Models are loaded only now. Loading the queue backend here, and with it ORDER_PROCESSOR, stops every process
        # at its start, with a message naming the setting, when a dotted path is wrong: not at the first order.
        from metrics.process import register_worker_stats
        from orders.queueing import get_backend

        backend = get_backend()
        # The metrics show this process's worker numbers without importing the queue: they are handed over here.
        register_worker_stats(lambda: get_backend().stats())
        # Unset, only a process that loads order_system.wsgi (it serves requests) starts the backend: not migrate,
        # shell or the tests. ORDER_WORKER_AUTOSTART=1 starts it in every process.
        if settings.ORDER_WORKER_AUTOSTART:
            backend.start()
