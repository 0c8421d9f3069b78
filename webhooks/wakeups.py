"""Wake-ups for this process's webhook sender: the services call wake_senders() once new deliveries are committed."""

import weakref

_senders: weakref.WeakSet = weakref.WeakSet()


def listen(sender) -> None:
    """Have sender.wake() called at every wake_senders() from now on, while sender lives."""
    _senders.add(sender)


def wake_senders() -> None:
    """Tell this process's sender there may be deliveries to send now; the others find them at their next sweep."""
    for sender in list(_senders):
        sender.wake()
