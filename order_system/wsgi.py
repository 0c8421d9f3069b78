"""Django's WSGI application. A process that loads this module serves requests, so it starts its order worker here.

granian (order_system.rsgi, `make run`) and any WSGI server, such as the benchmark's gunicorn, load it in each
serving process; runserver loads it in its serving child.
"""

import gc
import os
from importlib import import_module

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "order_system.settings")

application = get_wsgi_application()


def start_serving() -> None:
    """Load all the code requests need, freeze it, and start this process's queue backend."""
    from orders.queueing import get_backend

    import_module(settings.ROOT_URLCONF)  # the views, serializers and DRF, which would load on the first request
    # What is loaded now lives as long as the process. Out of the garbage collector's sight, it no longer makes each
    # full collection pause every request thread (docs/performance.md).
    gc.collect()  # garbage from start-up goes first, rather than being kept for good
    gc.freeze()
    if settings.ORDER_WORKER_AUTOSTART is not False:
        get_backend().start()


start_serving()
