"""A worker-only process: runs the order worker with no HTTP server, until SIGTERM or SIGINT."""

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from orders.backends.thread import ThreadBackend
from orders.queueing import get_backend


class Command(BaseCommand):
    """Add processing capacity next to the web servers; every process shares the work through the database."""

    help = "Process orders without serving HTTP, until SIGTERM or SIGINT."

    def handle(self, *args, **options):
        backend = get_backend()
        if not isinstance(backend, ThreadBackend):
            raise CommandError(f"ORDER_QUEUE_BACKEND is {settings.ORDER_QUEUE_BACKEND}: this command runs thread mode.")
        stopping = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopping.set())
        backend.start()
        at_once = backend.stats()["concurrency"]
        self.stdout.write(f"Processing orders, up to {at_once} at once; SIGTERM or Ctrl-C stops.")
        stopping.wait()
        self.stdout.write("Stopping: in-flight orders finish or go back to PENDING.")
        backend.stop()
