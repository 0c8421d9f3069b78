"""The numbers of the process that answers a metrics request: its pid, its uptime and what its order worker runs.

The worker belongs to the orders app, which says where its numbers come from with register_worker_stats() in its
AppConfig.ready(), as apps register system checks with Django: so metrics never imports the queue or the worker.
"""

import os
import time
from collections.abc import Callable

from metrics.apps import PROCESS_STARTED


def _no_worker() -> dict[str, int]:
    return {"concurrency": 0, "in_flight": 0}


_worker_stats: Callable[[], dict[str, int]] = _no_worker


def register_worker_stats(stats: Callable[[], dict[str, int]]) -> None:
    """Where this process's worker numbers come from: stats() returns {"concurrency": n, "in_flight": n}."""
    global _worker_stats
    _worker_stats = stats


def process_stats() -> dict:
    """{pid, uptime_seconds, concurrency, in_flight} of this process; a process without a worker runs 0 of 0."""
    return {"pid": os.getpid(), "uptime_seconds": round(time.monotonic() - PROCESS_STARTED, 3), **_worker_stats()}
