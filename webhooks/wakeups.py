"""Wake-ups for this process's webhook senders: the services call wake_senders() once deliveries may have come due."""

import weakref

_senders: weakref.WeakSet = weakref.WeakSet()


def listen(sender) -> None:
    """Have sender.wake(deliveries) called at every wake_senders() from now on, while sender lives: the in-process
    sender (thread mode), or the Celery backend, which publishes a task for each of them that is due."""
    _senders.add(sender)


def wake_senders(deliveries) -> None:
    """Tell this process's senders that these deliveries (a Delivery queryset) may be due now; the others find them
    at their next sweep."""
    for sender in list(_senders):
        sender.wake(deliveries)
