"""App config: loads the queue backend (and the processor), and starts the worker in processes that serve requests."""

import os
import sys

from django.apps import AppConfig
from django.conf import settings


class OrdersConfig(AppConfig):
    """Orders app; ready() is idempotent and touches no database."""

    name = "orders"

    def ready(self) -> None:
        # Models are loaded only now. Loading the queue backend here, and with it ORDER_PROCESSOR, stops every process
        # at its start, with a message naming the setting, when a dotted path is wrong: not at the first order.
        from orders.queueing import get_backend

        backend = get_backend()
        if worker_should_autostart():
            backend.start()


def worker_should_autostart() -> bool:
    """ORDER_WORKER_AUTOSTART decides when set; otherwise only runserver's serving child starts the worker here.

    The server's processes (granian, `make run`) start theirs when they load order_system.wsgi, as every process that
    serves requests does: no guess from sys.argv is needed for them.
    """
    if settings.ORDER_WORKER_AUTOSTART is not None:
        return settings.ORDER_WORKER_AUTOSTART
    args = sys.argv[1:]
    # runserver's autoreloader parent only watches files; its child (RUN_MAIN=true) serves requests.
    return args[:1] == ["runserver"] and (os.environ.get("RUN_MAIN") == "true" or "--noreload" in args)
