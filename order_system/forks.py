"""The one fork hook: in a forked child, every object registered here starts over.

A child has none of its parent's threads, so a lock one of them held stays held, and work they were doing never
ends; and it shares its parent's open files, with the flock() on each.
"""

import os
import weakref

_registered: weakref.WeakSet = weakref.WeakSet()


def start_over_in_forked_children(owner) -> None:
    """Have owner.start_over() called in each process forked from this one from now on, while owner lives."""
    _registered.add(owner)


def _start_over() -> None:
    for owner in list(_registered):
        owner.start_over()


os.register_at_fork(after_in_child=_start_over)
