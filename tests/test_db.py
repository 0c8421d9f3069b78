"""GroupCommit: concurrent writes share a transaction, and each caller still gets its own outcome."""

import os
import signal
import threading
import uuid

import pytest
from django.db import IntegrityError, connection, transaction

from order_system.db import GroupCommit
from order_system.sqlite.lock import writer_lock
from orders.models import Order
from tests.factories import OrderFactory
from tests.helpers import wait_for


class HeldFirstBatch:
    """A GroupCommit that inserts one order per item (the item is its order_id) and records each batch; the first
    batch waits inside its transaction until released, so that the callers after it pile up behind it."""

    def __init__(self):
        self.batches: list[list[uuid.UUID]] = []
        self.first_batch_writing = threading.Event()
        self.release_first_batch = threading.Event()
        self.commits = GroupCommit(self.write)
        self.outcomes: dict[uuid.UUID, str] = {}

    def write(self, order_ids: list[uuid.UUID]) -> None:
        self.batches.append(list(order_ids))
        Order.objects.bulk_create([OrderFactory.build(order_id=order_id) for order_id in order_ids])
        if len(self.batches) == 1:
            self.first_batch_writing.set()
            self.release_first_batch.wait(10)

    def run_in_thread(self, order_id: uuid.UUID) -> threading.Thread:
        def run():
            try:
                self.commits.run(order_id)
                # Read on this thread's own connection: the write must be committed by the time run() returns.
                self.outcomes[order_id] = "committed" if Order.objects.filter(pk=order_id).exists() else "missing"
            except IntegrityError:
                self.outcomes[order_id] = "IntegrityError"
            finally:
                connection.close()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def run_behind_a_held_batch(self, order_ids: list[uuid.UUID]) -> None:
        first = uuid.uuid4()
        threads = [self.run_in_thread(first)]
        assert self.first_batch_writing.wait(10)
        threads += [self.run_in_thread(order_id) for order_id in order_ids]
        wait_for(lambda: len(self.commits._waiting) == len(order_ids))
        self.release_first_batch.set()
        for thread in threads:
            thread.join(10)
            assert not thread.is_alive(), "a caller never got its outcome"
        assert self.outcomes.pop(first) == "committed"


def test_writes_that_arrive_during_a_batch_are_committed_together_in_the_next(transactional_db):
    group = HeldFirstBatch()
    waiting = [uuid.uuid4() for _ in range(5)]

    group.run_behind_a_held_batch(waiting)

    assert len(group.batches) == 2
    assert sorted(group.batches[1]) == sorted(waiting)
    assert group.outcomes == dict.fromkeys(waiting, "committed")
    assert Order.objects.count() == 6


def test_an_item_that_fails_its_batch_fails_alone_and_the_others_are_committed(transactional_db):
    taken = OrderFactory().order_id
    group = HeldFirstBatch()
    waiting = [uuid.uuid4(), taken, uuid.uuid4()]

    group.run_behind_a_held_batch(waiting)

    assert sorted(group.batches[1]) == sorted(waiting)  # tried together first, then each alone
    assert group.outcomes == {waiting[0]: "committed", taken: "IntegrityError", waiting[2]: "committed"}
    assert Order.objects.count() == 4


class Interrupted(Exception):
    """What a signal handler raises in a caller waiting for its batch (as KeyboardInterrupt would)."""


class InterruptingLock:
    """GroupCommit's lock, which interrupts the waiting main thread the moment the leader lets go of it after taking
    a batch: the narrowest window between the batch being taken and the batch being written."""

    def __init__(self, leader_exits_before_the_batch: int):
        self._lock = threading.Lock()
        self._exits_left = leader_exits_before_the_batch + 1
        self.leader: int | None = None
        self.waiter_left = threading.Event()

    def __enter__(self):
        self._lock.acquire()

    def __exit__(self, *exc_info):
        self._lock.release()
        if threading.get_ident() == self.leader:
            self._exits_left -= 1
            if self._exits_left == 0:
                signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)
                assert self.waiter_left.wait(10), "the interrupted caller never left run()"


@pytest.mark.skipif(connection.vendor != "sqlite", reason="holds the writer lock to line the callers up")
def test_a_caller_interrupted_after_its_item_was_taken_leaves_the_batch_alone(transactional_db):
    group = GroupCommit(
        lambda order_ids: Order.objects.bulk_create([OrderFactory.build(order_id=order_id) for order_id in order_ids])
    )
    group._lock = lock = InterruptingLock(leader_exits_before_the_batch=1)  # its own append comes first
    leader_item, waiter_item = uuid.uuid4(), uuid.uuid4()
    leader_error: list[BaseException] = []

    def lead():
        lock.leader = threading.get_ident()
        try:
            group.run(leader_item)
        except BaseException as exc:
            leader_error.append(exc)
        finally:
            connection.close()

    def interrupt(signum, frame):
        raise Interrupted

    def let_the_leader_write():
        wait_for(lambda: len(group._waiting) == 2)  # the waiter is in line behind it
        writers.release()

    previous = signal.signal(signal.SIGUSR1, interrupt)
    writers = writer_lock(connection.settings_dict["NAME"])
    writers.acquire()  # the leader waits for the writer lock, so the waiter joins its batch
    leader = threading.Thread(target=lead, daemon=True)
    try:
        leader.start()
        wait_for(lambda: group._leading)
        threading.Thread(target=let_the_leader_write, daemon=True).start()
        with pytest.raises(Interrupted):
            group.run(waiter_item)  # an error here would be the waiter removing an item the batch already took
        lock.waiter_left.set()
        leader.join(10)
    finally:
        lock.waiter_left.set()
        signal.signal(signal.SIGUSR1, previous)

    assert not leader.is_alive() and leader_error == []
    assert set(Order.objects.values_list("pk", flat=True)) == {leader_item, waiter_item}  # the batch was written
    assert group._waiting == [] and not group._leading  # and the next caller leads a batch of its own
    group.run(uuid.uuid4())
    assert Order.objects.count() == 3


@pytest.mark.skipif(connection.vendor != "sqlite", reason="holds the writer lock to keep a batch waiting")
def test_a_forked_child_leads_a_batch_of_its_own_while_its_parents_batch_waits(transactional_db):
    # The batches write no rows: SQLite loses a forked child's commits while its parent has connections open.
    batches: list[list] = []
    group = GroupCommit(batches.append)
    writers = writer_lock(connection.settings_dict["NAME"])
    writers.acquire()  # the parent's batch waits for it, outside any transaction

    def lead():
        try:
            group.run("parent's")
        finally:
            connection.close()

    leader = threading.Thread(target=lead)
    leader.start()
    wait_for(lambda: group._leading)

    child = os.fork()
    if child == 0:  # the parent's leader came along as state, but not as a thread
        writer = threading.Thread(target=group.run, args=("child's",))
        writer.start()
        writer.join(20)
        os._exit(0 if batches == [["child's"]] else 1)
    writers.release()
    leader.join(10)
    _, status = os.waitpid(child, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert batches == [["parent's"]]


def test_inside_a_transaction_the_write_is_part_of_it_and_rolls_back_with_it(transactional_db):
    group = HeldFirstBatch()
    group.release_first_batch.set()
    order_id = uuid.uuid4()

    with pytest.raises(RuntimeError), transaction.atomic():
        group.commits.run(order_id)
        assert Order.objects.filter(pk=order_id).exists()
        raise RuntimeError("the caller's transaction rolls back")

    assert group.batches == [[order_id]]
    assert not Order.objects.filter(pk=order_id).exists()
