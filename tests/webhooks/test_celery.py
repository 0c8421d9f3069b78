"""Webhooks in Celery mode for real: a server publishing, `celery worker` subprocesses sending with Celery tasks on
Redis and PostgreSQL (MariaDB too, end to end), to receivers on 127.0.0.1 that verify every delivery."""

import signal
import threading
from collections import Counter

import pytest

from tests.helpers import place_orders, wait_for
from tests.services.test_celery import start_celery
from tests.webhooks.test_server import LIFECYCLE, WEBHOOK_ENV, lifecycles, register


@pytest.fixture
def database(request):
    """PostgreSQL, or the database a test's parameters name."""
    return request.getfixturevalue(getattr(request, "param", "postgres_database"))


@pytest.fixture
def celery_env(redis_broker):
    """Celery mode on this test's own queue; retries and sweeps come fast, and a lease is the 2 s timeout + 10 s."""
    return {"ORDER_QUEUE_BACKEND": "celery", **redis_broker, **WEBHOOK_ENV, "WEBHOOK_SWEEP_SECONDS": "0.2"}


def distinct_ids(received) -> int:
    return len({request_.message_id for request_ in received})


@pytest.mark.parametrize("database", ["postgres_database", "mysql_database"], indirect=True)
def test_celery_tasks_send_each_orders_created_processing_completed_signed_in_order_once(
    processes, database, celery_env, receiver
):
    server = processes(**celery_env)
    worker = start_celery(processes, **celery_env)
    register(server, receiver)

    order_ids = place_orders(server, 50)

    received = wait_for(receiver.succeeded, until=lambda got: distinct_ids(got) == 150, timeout=90, interval=0.2)
    assert receiver.unverified == []
    assert lifecycles(received) == {order_id: LIFECYCLE for order_id in order_ids}
    assert set(Counter(request_.message_id for request_ in receiver.succeeded()).values()) == {1}
    assert "Task webhooks.tasks.send_webhook[" in worker.output()  # sent by Celery tasks, not by the server


def test_a_failed_attempt_is_retried_by_a_celery_task_with_the_same_webhook_id_and_body(
    processes, celery_env, receivers
):
    # The first attempt of every third order's events fails; the retry must come, the same message again.
    receiver = receivers(
        lambda attempt, event: 500 if attempt == 1 and int(event["data"]["order_id"][-4:], 16) % 3 == 0 else 200
    )
    server = processes(**celery_env)
    start_celery(processes, **celery_env)
    register(server, receiver)

    order_ids = place_orders(server, 30)

    received = wait_for(receiver.succeeded, until=lambda got: distinct_ids(got) == 90, timeout=90, interval=0.2)
    assert receiver.unverified == []
    assert lifecycles(received) == {order_id: LIFECYCLE for order_id in order_ids}
    failed = [request_ for request_ in receiver.requests if request_.answered == 500]
    assert failed  # some orders' ids end in a multiple of 3
    bodies = {request_.message_id: request_.body for request_ in received}
    assert all(bodies.get(request_.message_id) == request_.body for request_ in failed)  # retried, the same message
    assert set(Counter(request_.message_id for request_ in received).values()) == {1}


def test_webhook_tasks_have_a_queue_of_their_own_so_orders_never_wait_behind_them(
    processes, database, celery_env, celery_queue, receiver
):
    server = processes(**celery_env)
    orders_worker = start_celery(processes, args=("--queues", celery_queue), **celery_env)
    register(server, receiver)

    order_ids = place_orders(server, 20)

    wait_for(lambda: database.statuses() == {"COMPLETED": 20}, timeout=60)
    assert receiver.requests == []  # no worker takes the webhooks' queue yet
    webhooks_worker = start_celery(processes, args=("--queues", f"{celery_queue}.webhooks"), **celery_env)
    received = wait_for(receiver.succeeded, until=lambda got: distinct_ids(got) == 60, timeout=90, interval=0.2)
    assert lifecycles(received) == {order_id: LIFECYCLE for order_id in order_ids}
    assert "Task webhooks.tasks.send_webhook[" not in orders_worker.output()
    assert "Task orders.tasks.process_order[" not in webhooks_worker.output()


def test_after_a_kill_9_of_the_celery_worker_mid_delivery_a_new_worker_sends_every_event(
    processes, database, celery_env, receivers
):
    # Until the worker is killed the receiver holds every request, then refuses it: each 2xx is the new worker's.
    killed = threading.Event()
    receiver = receivers(lambda attempt, event: 200 if killed.is_set() else (503, 1.5))
    # A message the killed worker had taken but not yet claimed stays on Redis, unacknowledged, for its visibility
    # timeout: the sweep sends that delivery again after ORDER_REQUEUE_SECONDS. A claimed one comes back with its lease.
    celery_env = {**celery_env, "ORDER_REQUEUE_SECONDS": "3"}
    server = processes(**celery_env)
    worker = start_celery(processes, **celery_env)
    register(server, receiver)
    order_ids = place_orders(server, 10)
    wait_for(lambda: database.statuses() == {"COMPLETED": 10}, timeout=30)  # each order has its 3 events, no more
    leased = "SELECT count(*) FROM webhooks_delivery WHERE leased_until > now()"
    wait_for(lambda: database.query(leased)[0][0], timeout=30)  # deliveries are in flight

    worker.stop(signal.SIGKILL)
    killed.set()
    start_celery(processes, **celery_env)

    # Once the killed attempts' leases are over (the timeout + 10 s), every event arrives at least once.
    received = wait_for(receiver.succeeded, until=lambda got: distinct_ids(got) == 30, timeout=90, interval=0.2)
    assert receiver.unverified == []
    assert lifecycles(received) == {order_id: LIFECYCLE for order_id in order_ids}
