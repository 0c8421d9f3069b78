"""gunicorn settings for `make run` and `make serve`; GUNICORN_CMD_ARGS overrides any of them, e.g. "--timeout 60"."""

import gc
import os
from importlib import import_module

wsgi_app = "order_system.wsgi"
bind = "127.0.0.1:8000"
# Processes and threads per process: WEB_CONCURRENCY (gunicorn's own variable) and GUNICORN_THREADS.
workers = int(os.environ.get("WEB_CONCURRENCY") or 2)
# Threads answer requests while a slow client holds one of them; the sync worker would stall the whole process.
worker_class = "gthread"
# 16, not 8: more creates share each group commit; side by side, 16 gave the better intake (README, "Benchmarks").
threads = int(os.environ.get("GUNICORN_THREADS") or 16)
# A deep listen queue: the README's 1,000 simultaneous curls wait here instead of being reset.
backlog = 2048
# Each worker process listens on its own SO_REUSEPORT socket and the kernel spreads new connections over them. On one
# shared socket, whichever process woke first could accept a whole burst of keep-alive connections and serve them
# alone, at half the server's speed, while the other idled (measured: 1 run in 3 of `wrk -c64`).
reuse_port = True
# Django loads in each worker process after the fork; post_worker_init below starts its order worker.
preload_app = False
# gunicorn's largest request line: a long but otherwise bad query string gets Django's JSON 400, not a bare 414.
limit_request_line = 8190
# Long enough for in-flight requests, then the order worker's grace (ORDER_SHUTDOWN_GRACE_SECONDS) and hand-back.
graceful_timeout = 30
timeout = 30
accesslog = None
control_socket_disable = True  # several servers (tests, benchmarks) may run side by side


def post_worker_init(worker):
    """Each worker process serves requests: it loads all its code, freezes it, and starts its queue backend's work.

    After the fork, so --preload is safe too.
    """
    from django.conf import settings

    from orders.queueing import get_backend

    import_module(settings.ROOT_URLCONF)  # the views, serializers and DRF, which would load on the first request
    # What is loaded now lives as long as the process. Out of the garbage collector's sight, it no longer makes each
    # full collection pause every request thread for tens of milliseconds (p99 at 64 connections: 90 -> 60 ms).
    gc.collect()  # garbage from start-up goes first, rather than being kept for good
    gc.freeze()
    if settings.ORDER_WORKER_AUTOSTART is not False:
        get_backend().start()
