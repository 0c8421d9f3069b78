"""The in-process worker: FIFO, failures and retries, recovery and admin actions, with real threads."""

import re
import threading
import time
import uuid
from collections import Counter
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.db import OperationalError

from orders import processing
from orders.models import Order
from orders.selectors import order_ids_due
from orders.services import Claim, order_create
from orders.worker import OrderWorker
from tests.factories import OrderFactory
from tests.helpers import wait_for


def create_orders(count: int) -> list[Order]:
    return [order_create(user_id=f"user{n}", item_ids=[n + 1], total_amount=Decimal("1.00"))[0] for n in range(count)]


def all_final(*statuses: str):
    def check():
        return Order.objects.exclude(status__in=statuses).count() == 0

    return check


def claimed_in_order(caplog) -> list[str]:
    """Order ids in the order they were claimed (orders claimed in one batch share their started_at)."""
    return re.findall(r"order_id=(\S+) from=PENDING to=PROCESSING", caplog.text)


def test_orders_start_in_commit_order_with_one_worker(settings, transactional_db, caplog):
    from orders import queueing

    caplog.set_level("INFO", logger="orders.transitions")
    settings.ORDER_WORKERS = 1
    worker = queueing.get_worker()  # created but not started: the queue fills in commit order
    try:
        orders = create_orders(30)
        worker.start()
        wait_for(all_final(Order.Status.COMPLETED))
    finally:
        queueing.stop_worker()

    assert claimed_in_order(caplog) == [str(order.pk) for order in orders]


def test_worker_completes_every_order_exactly_once(order_worker):
    create_orders(50)

    wait_for(all_final(Order.Status.COMPLETED))

    assert set(Order.objects.values_list("attempts", flat=True)) == {1}


def test_orders_already_pending_at_start_are_recovered_oldest_first(settings, transactional_db, caplog):
    from orders import queueing

    caplog.set_level("INFO", logger="orders.transitions")
    settings.ORDER_WORKERS = 1
    orders = OrderFactory.create_batch(5)  # committed, never queued: as after a restart
    try:
        queueing.get_worker().start()
        wait_for(all_final(Order.Status.COMPLETED))
    finally:
        queueing.stop_worker()

    assert claimed_in_order(caplog) == [str(order.pk) for order in sorted(orders, key=lambda order: order.created_at)]


def test_failing_orders_are_retried_with_backoff_then_fail_with_a_reason(order_worker, settings, caplog):
    caplog.set_level("INFO", logger="orders.transitions")
    settings.ORDER_FAILURE_RATE = 1.0
    settings.ORDER_RETRY_BACKOFF_SECONDS = 0.2
    [order] = create_orders(1)

    wait_for(all_final(Order.Status.FAILED))

    order.refresh_from_db()
    assert order.attempts == 3
    assert order.failure_reason == "SimulatedFailure: payment declined (simulated)"
    lines = [record for record in caplog.records if str(order.pk) in record.getMessage()]
    moves = [record.getMessage().split(" ")[1:3] for record in lines]
    assert moves == [["from=PENDING", "to=PROCESSING"], ["from=PROCESSING", "to=PENDING"]] * 2 + [
        ["from=PENDING", "to=PROCESSING"],
        ["from=PROCESSING", "to=FAILED"],
    ]
    # Backoff: each retry's claim comes at least 0.2 s, then 0.4 s, after the failure before it.
    gaps = [lines[i + 1].created - lines[i].created for i in (1, 3)]
    assert gaps[0] >= 0.2
    assert gaps[1] >= 0.4


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
    assert not Order.objects.filter(status=Order.Status.FAILED, failure_reason="").exists()


def test_admin_retry_sends_failed_orders_back_through_the_worker(order_worker, settings, client):
    settings.ORDER_FAILURE_RATE = 1.0
    orders = create_orders(3)
    wait_for(all_final(Order.Status.FAILED))
    settings.ORDER_FAILURE_RATE = 0.0
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))

    response = client.post(
        "/admin/orders/order/",
        {"action": "retry_orders", "_selected_action": [str(order.pk) for order in orders]},
        follow=True,
    )

    assert "3 order(s) retried." in [str(message) for message in response.context["messages"]]
    wait_for(all_final(Order.Status.COMPLETED))
    assert set(Order.objects.values_list("attempts", flat=True)) == {4}  # 3 failed, then the one more


def test_admin_cancel_cancels_pending_orders_and_skips_others(client, db):
    pending = OrderFactory()
    done = OrderFactory(status=Order.Status.COMPLETED)
    client.force_login(User.objects.create_superuser("admin", "admin@example.com", "pw"))

    response = client.post(
        "/admin/orders/order/",
        {"action": "cancel_orders", "_selected_action": [str(pending.pk), str(done.pk)]},
        follow=True,
    )

    messages = [str(message) for message in response.context["messages"]]
    assert messages == ["1 order(s) cancelled.", "1 order(s) skipped: not PENDING."]
    pending.refresh_from_db()
    done.refresh_from_db()
    assert (pending.status, done.status) == (Order.Status.CANCELLED, Order.Status.COMPLETED)


def test_an_exception_in_a_job_never_kills_a_worker_thread():
    done = []

    def processor(order_ids, abandon):
        if 1 in order_ids:
            raise RuntimeError("boom")
        done.extend(order_ids)

    worker = OrderWorker(workers=1, processor=processor, sweep=list, sweep_seconds=60)
    worker.start()
    try:
        worker.submit(1)
        worker.submit(2)
        wait_for(lambda: done == [2])
        assert worker.alive == 1
    finally:
        worker.stop(timeout=1)


def test_stop_hands_back_work_still_running_after_the_grace_period():
    finished = threading.Event()
    outcomes = []

    def processor(order_ids, abandon):
        finished.set()
        outcomes.append("abandoned" if abandon.wait(30) else "finished")

    worker = OrderWorker(workers=1, processor=processor, sweep=list, sweep_seconds=60)
    worker.start()
    worker.submit(1)
    finished.wait(10)

    worker.stop(timeout=0.1)

    assert outcomes == ["abandoned"]
    assert worker.alive == 0


def test_an_id_is_queued_once_however_often_it_is_submitted():
    seen = []
    worker = OrderWorker(
        workers=1, processor=lambda order_ids, abandon: seen.extend(order_ids), sweep=list, sweep_seconds=60
    )

    for _ in range(3):
        worker.submit(7)
    worker.start()
    wait_for(lambda: seen)
    worker.stop(timeout=1)

    assert seen == [7]


def test_cancelled_order_is_never_processed(order_worker):
    order = OrderFactory(status=Order.Status.CANCELLED)

    processing.process_order(order.pk, threading.Event())

    order.refresh_from_db()
    assert (order.status, order.attempts) == (Order.Status.CANCELLED, 0)


def test_a_seeded_attempt_has_the_same_outcome_whichever_thread_runs_it(settings):
    settings.ORDER_RANDOM_SEED = 7
    settings.ORDER_FAILURE_RATE = 0.5
    claims = [Claim(order_id=uuid.uuid4(), attempt=1, started_at=None, created_at=None) for _ in range(20)]

    def outcomes():
        results = []
        for claim in claims:
            try:
                processing.simulate_work(claim, threading.Event())
                results.append("ok")
            except processing.SimulatedFailure:
                results.append("failed")
        return results

    first = outcomes()
    assert outcomes() == first
    assert set(first) == {"ok", "failed"}


def test_a_forked_copy_of_a_started_worker_starts_its_own_threads():
    seen = []
    worker = OrderWorker(
        workers=1, processor=lambda order_ids, abandon: seen.extend(order_ids), sweep=list, sweep_seconds=60
    )
    worker.start()
    worker._pid = -1  # as in a child process after fork: the object came along, its threads did not

    worker.start()
    worker.submit(3)

    wait_for(lambda: seen == [3])
    worker.stop(timeout=1)


def test_a_thread_takes_up_to_batch_size_orders_already_waiting_in_fifo_order():
    batches = []
    worker = OrderWorker(
        workers=1,
        processor=lambda order_ids, abandon: batches.append(order_ids),
        sweep=list,
        sweep_seconds=60,
        batch_size=3,
    )
    for order_id in range(1, 6):
        worker.submit(order_id)

    worker.start()
    wait_for(lambda: sum(map(len, batches)) == 5)
    worker.stop(timeout=1)

    assert batches == [[1, 2, 3], [4, 5]]


def test_batches_are_one_order_when_work_takes_seconds_and_large_when_it_takes_none(settings):
    settings.ORDER_PROCESSING_SECONDS = (1.0, 5.0)
    assert processing.batch_size() == 1
    settings.ORDER_PROCESSING_SECONDS = (0.0, 0.02)
    assert processing.batch_size() == 5
    settings.ORDER_PROCESSING_SECONDS = (0.0, 0.0)
    assert processing.batch_size() == processing.MAX_BATCH


def test_a_backlog_larger_than_one_sweep_is_processed_without_waiting_for_the_next_sweep(transactional_db):
    for _ in range(25):
        order_create(user_id="u", item_ids=[1], total_amount=Decimal(1))
    worker = OrderWorker(
        workers=2,
        processor=processing.process_orders,
        sweep=lambda: order_ids_due(limit=10),
        sweep_seconds=60,
        sweep_batch=10,
        batch_size=4,
    )

    worker.start()
    try:
        wait_for(lambda: Order.objects.filter(status=Order.Status.COMPLETED).count() == 25, timeout=30)
    finally:
        worker.stop(timeout=1)
    assert set(Order.objects.values_list("attempts", flat=True)) == {1}


def test_a_backlog_that_does_not_move_is_not_swept_again_at_once():
    sweeps = []

    def sweep():
        sweeps.append(time.monotonic())
        return [1, 2, 3]  # a full sweep, and the same one every time: its orders keep failing

    def processor(order_ids, abandon):
        raise RuntimeError("the database is down")

    worker = OrderWorker(workers=2, processor=processor, sweep=sweep, sweep_seconds=60, sweep_batch=3)
    worker.start()
    time.sleep(0.5)
    worker.stop(timeout=1)

    assert len(sweeps) == 2  # the first, and one more to see whether the backlog moved; then back on the clock


def test_a_database_failure_mid_batch_hands_the_rest_of_the_batch_back(settings, monkeypatch, transactional_db):
    settings.ORDER_FAILURE_RATE = 1.0
    orders = [order_create(user_id="u", item_ids=[1], total_amount=Decimal(1))[0] for _ in range(4)]

    def database_gone(**_):
        raise OperationalError("the database went away")

    monkeypatch.setattr(processing, "order_fail_attempt", database_gone)
    with pytest.raises(OperationalError):
        processing.process_orders([order.pk for order in orders], threading.Event())

    assert Counter(Order.objects.values_list("status", "attempts")) == {("PENDING", 0): 4}  # no attempt used up
