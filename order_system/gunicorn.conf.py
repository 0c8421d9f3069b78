"""gunicorn settings for `make run`; override any of them with GUNICORN_CMD_ARGS, e.g. "--workers 4"."""

import os

# These processes serve requests, so each runs its own order worker (see OrdersConfig.ready()).
os.environ.setdefault("ORDER_WORKER_AUTOSTART", "1")

wsgi_app = "order_system.wsgi"
bind = "127.0.0.1:8000"
workers = 2
# Threads answer requests while a slow client holds one of them; the sync worker would stall the whole process.
worker_class = "gthread"
threads = 8
# A deep listen queue: the README's 1,000 simultaneous curls wait here instead of being reset.
backlog = 2048
# Django is imported in each worker after the fork, so worker threads are never started in the master.
preload_app = False
# gunicorn's largest request line: a long but otherwise bad query string gets Django's JSON 400, not a bare 414.
limit_request_line = 8190
graceful_timeout = 10
timeout = 30
accesslog = None
control_socket_disable = True  # several servers (tests, benchmarks) may run side by side
