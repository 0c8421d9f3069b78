"""App config: starts the in-process worker, but only in processes that serve requests."""

import os
import sys

from django.apps import AppConfig
from django.conf import settings


class OrdersConfig(AppConfig):
    """Orders app; ready() is idempotent and touches no database."""

    name = "orders"

    def ready(self) -> None:
        if worker_should_autostart():
            from orders.queueing import start_worker

            start_worker()


def worker_should_autostart() -> bool:
    """ORDER_WORKER_AUTOSTART decides when set; otherwise only runserver's serving child starts the worker."""
    if settings.ORDER_WORKER_AUTOSTART is not None:
        return settings.ORDER_WORKER_AUTOSTART
    args = sys.argv[1:]
    # runserver's autoreloader parent only watches files; its child (RUN_MAIN=true) serves requests.
    return args[:1] == ["runserver"] and (os.environ.get("RUN_MAIN") == "true" or "--noreload" in args)
