"""A benchmark-only queue backend: the thread backend whose webhook sender stops as soon as it has started.

    ORDER_QUEUE_BACKEND=benchmarks.outbox.UnsentBackend   (benchmarks/bench.py's webhooks section sets it)

Every delivery is still written with its order's change, and none is sent: set beside the runs with no endpoint and
with the sender on, it tells what writing the outbox costs intake and drain apart from what sending costs.
"""

from orders.backends.thread import ThreadBackend


class UnsentBackend(ThreadBackend):
    """ThreadBackend with its DeliverySender stopped at once; the order worker runs as usual."""

    def start(self) -> None:
        super().start()
        if (sender := self._sender) is not None:
            sender.stop(timeout=0)  # before any endpoint exists: the bench subscribes once the server is up
