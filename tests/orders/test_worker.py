"""The in-process worker: FIFO, failures and retries, recovery and shutdown, with real threads."""

import asyncio
import os
import re
import threading
import time
import uuid
from collections import Counter
from decimal import Decimal

import pytest
from django.db import OperationalError, connections

from orders import processing, processors
from orders.models import Order
from orders.processors import OrderSnapshot
from orders.services import order_create
from orders.worker import OrderWorker
from tests import processors as test_processors
from tests.factories import OrderFactory
from tests.helpers import wait_for


def create_orders(count: int, **fields) -> list[Order]:
    return [
        order_create(**{"user_id": f"user{n}", "item_ids": [n + 1], "total_amount": Decimal("1.00"), **fields})[0]
        for n in range(count)
    ]


def all_final(*statuses: str):
    def check():
        return Order.objects.exclude(status__in=statuses).count() == 0

    return check


def claimed_in_order(caplog) -> list[str]:
    """Order ids in the order they were claimed (orders claimed in one batch share their started_at)."""
    return re.findall(r"order_id=(\S+) from=PENDING to=PROCESSING", caplog.text)


def new_worker(**options) -> OrderWorker:
    options = {
        "processor": processing.get_processor(),
        "concurrency": 100,
        "threads": 4,
        "sweep_seconds": 60,
        **options,
    }
    return OrderWorker(**options)


@pytest.mark.parametrize("concurrency", [1, 1000])
def test_orders_start_in_commit_order(start_worker, caplog, concurrency):
    caplog.set_level("INFO", logger="orders.transitions")
    start_worker(ORDER_CONCURRENCY=concurrency)
    orders = create_orders(30)
    wait_for(all_final(Order.Status.COMPLETED))

    assert claimed_in_order(caplog) == [str(order.pk) for order in orders]


def test_worker_completes_every_order_exactly_once(order_worker):
    create_orders(50)

    wait_for(all_final(Order.Status.COMPLETED))

    assert set(Order.objects.values_list("attempts", flat=True)) == {1}


def test_orders_already_pending_at_start_are_recovered_oldest_first(start_worker, caplog):
    caplog.set_level("INFO", logger="orders.transitions")
    orders = OrderFactory.create_batch(5)  # committed, never queued: as after a restart
    start_worker(ORDER_CONCURRENCY=1)
    wait_for(all_final(Order.Status.COMPLETED))

    assert claimed_in_order(caplog) == [str(order.pk) for order in sorted(orders, key=lambda order: order.created_at)]


def test_failing_orders_are_retried_with_backoff_then_fail_with_a_reason(start_worker, caplog):
    caplog.set_level("INFO", logger="orders.transitions")
    start_worker(ORDER_PROCESSOR="tests.processors.by_user_id", ORDER_RETRY_BACKOFF_SECONDS=0.2)
    [order] = create_orders(1, user_id="retries")

    wait_for(all_final(Order.Status.FAILED))

    order.refresh_from_db()
    assert order.attempts == 3
    assert order.failure_reason == "gateway timeout"
    lines = [record for record in caplog.records if str(order.pk) in record.getMessage()]
    moves = [record.getMessage().split(" ")[1:3] for record in lines]
    assert moves == [["from=PENDING", "to=PROCESSING"], ["from=PROCESSING", "to=PENDING"]] * 2 + [
        ["from=PENDING", "to=PROCESSING"],
        ["from=PROCESSING", "to=FAILED"],
    ]
    # Backoff: each attempt starts 0.2 s, then 0.4 s, or more, after the failed one before it started.
    first, second, third = test_processors.started[order.pk]
    assert second - first >= 0.2
    assert third - second >= 0.4


def test_with_a_seeded_failure_rate_every_order_ends_final_within_its_attempts(order_worker, settings):
    settings.ORDER_FAILURE_RATE = 0.5
    settings.ORDER_RETRY_BACKOFF_SECONDS = 0.01
    settings.ORDER_RANDOM_SEED = 20261125

    create_orders(80)
    wait_for(all_final(Order.Status.COMPLETED, Order.Status.FAILED))

    outcomes = Counter(Order.objects.values_list("status", "attempts"))
    assert outcomes[(Order.Status.FAILED, 3)] >= 1
    assert sum(count for (status, attempts), count in outcomes.items() if status == Order.Status.COMPLETED) >= 1
    assert outcomes[(Order.Status.COMPLETED, 2)] + outcomes[(Order.Status.COMPLETED, 3)] >= 1
    assert all(1 <= attempts <= 3 for _, attempts in outcomes)
    assert all(status != Order.Status.FAILED or attempts == 3 for status, attempts in outcomes)
    assert set(Order.objects.filter(status=Order.Status.FAILED).values_list("failure_reason", flat=True)) == {
        "SimulatedFailure: payment declined (simulated)"
    }


def test_an_outcome_the_database_refuses_fails_alone_and_is_left_to_its_lease(
    start_worker, monkeypatch, settings, caplog
):
    orders = create_orders(4)
    refused, record = orders[1].pk, processing.record
    refusing = threading.Event()
    refusing.set()

    def database_refuses_it(outcomes):
        if refusing.is_set() and refused in [outcome.claim.order_id for outcome in outcomes]:
            raise OperationalError("the database refused a value")
        record(outcomes)

    monkeypatch.setattr(processing, "record", database_refuses_it)
    monkeypatch.setattr(test_processors, "gate", threading.Event())
    backend = start_worker(ORDER_PROCESSOR="tests.processors.waits_for_the_gate")
    wait_for(lambda: backend.stats()["in_flight"] == 4)
    test_processors.gate.set()  # the four end together, so one cycle writes their outcomes

    wait_for(lambda: Order.objects.filter(status=Order.Status.COMPLETED).count() == 3)
    assert re.search(r"writing [234] outcomes together failed; writing each alone", caplog.text)  # the others went on
    wait_for(lambda: backend.stats()["in_flight"] == 0)  # the refused order is no longer this worker's
    assert Order.objects.get(pk=refused).status == Order.Status.PROCESSING  # until its lease expires
    refusing.clear()
    settings.ORDER_LEASE_SECONDS = 0.5
    wait_for(all_final(Order.Status.COMPLETED))
    assert Order.objects.get(pk=refused).attempts == 2  # the lost attempt counted


def test_stop_hands_back_orders_still_running_after_the_grace_period(settings, transactional_db):
    settings.ORDER_PROCESSING_SECONDS = (30.0, 30.0)
    create_orders(3)
    worker = new_worker()
    worker.start()
    wait_for(lambda: Order.objects.filter(status=Order.Status.PROCESSING).count() == 3)

    worker.stop(timeout=0.1)

    assert Counter(Order.objects.values_list("status", "attempts")) == {("PENDING", 0): 3}  # no attempt used up
    assert not worker.alive


def test_a_plain_def_still_running_after_the_grace_period_is_handed_back_too(settings, transactional_db):
    settings.ORDER_PROCESSOR = "tests.processors.by_user_id_sync"
    create_orders(2, user_id="hangs")
    worker = new_worker(processor=processing.get_processor())
    worker.start()
    wait_for(lambda: Order.objects.filter(status=Order.Status.PROCESSING).count() == 2)

    worker.stop(timeout=0.1)

    assert Counter(Order.objects.values_list("status", "attempts")) == {("PENDING", 0): 2}


def test_an_id_is_queued_once_however_often_it_is_submitted(transactional_db, caplog):
    caplog.set_level("INFO", logger="orders.transitions")
    [order] = create_orders(1)
    worker = new_worker()

    for _ in range(3):
        worker.submit(order.pk)
    worker.start()
    wait_for(all_final(Order.Status.COMPLETED))
    worker.stop(timeout=1)

    assert len(claimed_in_order(caplog)) == 1


def test_cancelled_order_is_never_processed(order_worker):
    order = OrderFactory(status=Order.Status.CANCELLED)

    processing.attempt_order(order.pk)

    order.refresh_from_db()
    assert (order.status, order.attempts) == (Order.Status.CANCELLED, 0)


def test_a_seeded_attempt_has_the_same_outcome_whichever_process_runs_it(settings):
    settings.ORDER_RANDOM_SEED = 7
    settings.ORDER_FAILURE_RATE = 0.5
    orders = [OrderSnapshot(uuid.uuid4(), "u", (1,), Decimal(1), 1, None) for _ in range(20)]

    async def outcomes():
        results = []
        for order in orders:
            try:
                await processors.simulate(order)
                results.append("ok")
            except processors.SimulatedFailure:
                results.append("failed")
        return results

    first = asyncio.run(outcomes())
    assert asyncio.run(outcomes()) == first
    assert set(first) == {"ok", "failed"}


def test_a_forked_child_runs_a_worker_of_its_own(start_worker, monkeypatch):
    monkeypatch.setattr(processing, "recover_and_find_due", list)  # only the child's own enqueue may bring the order
    backend = start_worker(ORDER_PROCESSOR="tests.processors.by_user_id")
    order = OrderFactory(user_id="returns-its-pid")

    child = os.fork()
    if child == 0:  # the backend and its worker came along, none of the worker's threads did
        try:
            backend.start()
            backend.enqueue(order.pk)
            finished = threading.Thread(target=wait_for_completion, args=(order.pk,))
            finished.start()
            finished.join()
        finally:
            os._exit(0)
    _, status = os.waitpid(child, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert Order.objects.values_list("status", "result").get(pk=order.pk) == ("COMPLETED", {"pid": child})


def wait_for_completion(order_id) -> None:
    """In a thread of the forked child: it may not use the connection the parent opened."""
    try:
        wait_for(lambda: Order.objects.filter(pk=order_id, status=Order.Status.COMPLETED).exists(), timeout=20)
    finally:
        connections.close_all()


def test_a_backlog_larger_than_one_sweep_is_processed_without_waiting_for_the_next_sweep(monkeypatch, transactional_db):
    monkeypatch.setattr(processing, "SWEEP_BATCH", 10)
    OrderFactory.create_batch(25)  # committed, never queued
    worker = new_worker(concurrency=4)

    worker.start()
    try:
        wait_for(lambda: Order.objects.filter(status=Order.Status.COMPLETED).count() == 25, timeout=30)
    finally:
        worker.stop(timeout=1)
    assert set(Order.objects.values_list("attempts", flat=True)) == {1}


def test_a_backlog_that_does_not_move_is_not_swept_again_at_once(monkeypatch, transactional_db):
    sweeps = []
    stuck = [order.pk for order in OrderFactory.create_batch(3, status=Order.Status.CANCELLED)]

    def sweep():
        sweeps.append(1)
        return stuck  # a full sweep, and the same one every time: its orders can't be claimed

    monkeypatch.setattr(processing, "SWEEP_BATCH", 3)
    monkeypatch.setattr(processing, "recover_and_find_due", sweep)
    worker = new_worker()
    worker.start()
    wait_for(lambda: len(sweeps) == 2)
    wait_for(lambda: worker._queue.empty())
    worker.stop(timeout=1)

    assert len(sweeps) == 2  # the first, and one more to see whether the backlog moved; then back on the clock


def test_a_retry_is_queued_when_its_backoff_is_over_not_at_the_next_sweep(start_worker):
    start_worker(
        ORDER_PROCESSOR="tests.processors.by_user_id",
        ORDER_SWEEP_SECONDS=60,  # far too late to be what brings the retry back
        ORDER_RETRY_BACKOFF_SECONDS=0.3,
    )
    [order] = create_orders(1, user_id="succeeds-on-attempt-2")
    wait_for(all_final(Order.Status.COMPLETED), timeout=10)

    order.refresh_from_db()
    assert (order.attempts, order.result) == (2, {"attempt": 2})
    first, second = test_processors.started[order.pk]
    assert second - first >= 0.3  # the backoff


def test_a_retry_due_at_once_is_queued_again_at_once(start_worker):
    start_worker(ORDER_PROCESSOR="tests.processors.by_user_id", ORDER_SWEEP_SECONDS=60)

    [order] = create_orders(1, user_id="retries-at-once")

    wait_for(all_final(Order.Status.COMPLETED), timeout=5)  # not at the next sweep, a minute later
    order.refresh_from_db()
    assert (order.attempts, order.result) == (2, {"attempt": 2})


def test_stop_during_a_cycle_that_claims_hands_the_claimed_orders_back(monkeypatch, transactional_db):
    claiming, may_go_on = threading.Event(), threading.Event()
    record_and_claim = processing.record_and_claim

    def held_up(outcomes, order_ids):
        if order_ids:
            claiming.set()
            may_go_on.wait(10)
        return record_and_claim(outcomes, order_ids)

    monkeypatch.setattr(processing, "record_and_claim", held_up)
    [order] = create_orders(1)
    worker = new_worker()
    worker.start()
    assert claiming.wait(10)

    stopping = threading.Thread(target=worker.stop, kwargs={"timeout": 0.1})
    stopping.start()
    wait_for(lambda: worker._stop_seen.is_set())
    time.sleep(0.5)  # past the 0.1 s grace: a worker that thought itself idle would have ended by now
    may_go_on.set()  # the claim commits after the grace period
    stopping.join(20)

    assert not worker.alive
    assert Order.objects.values_list("status", "attempts").get(pk=order.pk) == ("PENDING", 0)


def test_a_worker_whose_cycles_fail_says_why_in_the_log_and_to_readyz(start_worker, monkeypatch, client, caplog):
    def broken(self, count):
        raise RuntimeError("a bug in the worker")

    monkeypatch.setattr(OrderWorker, "_take", broken)
    backend = start_worker()
    assert backend.health() is None

    create_orders(1)

    wait_for(lambda: backend.health() is not None)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["problems"] == {"queue": "the order worker of this process is not running"}
    [stopped] = [record for record in caplog.records if record.getMessage().startswith("the order worker stopped")]
    assert stopped.exc_info[1].args == ("a bug in the worker",)
