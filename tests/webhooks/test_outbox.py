"""The outbox: each order's status change writes its deliveries in the order's own transaction."""

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection, transaction

from metrics.selectors import metrics_snapshot
from orders.models import Order
from orders.services import order_cancel, order_create, order_fail_attempt, order_retry, orders_claim, orders_complete
from tests.helpers import closing, wait_for
from webhooks import services
from webhooks.models import Delivery, Endpoint
from webhooks.services import endpoint_create, endpoint_delete, webhooks_record_transitions


def create_order(**fields) -> Order:
    order, _ = order_create(**{"user_id": "u", "item_ids": [1, 2], "total_amount": Decimal("9.99"), **fields})
    return order


def events(endpoint=None) -> list[tuple[str, str]]:
    """(event type, order id) of every delivery, oldest first."""
    deliveries = Delivery.objects.order_by("pk")
    if endpoint is not None:
        deliveries = deliveries.filter(endpoint=endpoint)
    return [(delivery.event_type, str(delivery.order_id)) for delivery in deliveries]


@pytest.mark.django_db
def test_each_status_change_writes_one_delivery_per_subscribed_endpoint_with_the_order_as_the_api_shows_it(api):
    everything = endpoint_create(url="http://127.0.0.1:9/all", events=["*"])
    completions = endpoint_create(url="http://127.0.0.1:9/done", events=["order.completed"])
    endpoint_create(url="http://127.0.0.1:9/cancelled", events=["order.cancelled"])

    order = create_order()
    (claim,) = orders_claim(order_ids=[order.pk])
    orders_complete(claims=[claim], results={order.pk: {"receipt": "r-1"}})

    order_id = str(order.pk)
    assert events(everything) == [
        ("order.created", order_id),
        ("order.processing", order_id),
        ("order.completed", order_id),
    ]
    assert events(completions) == [("order.completed", order_id)]
    completed = Delivery.objects.get(endpoint=completions)
    payload = json.loads(completed.body)
    assert set(payload) == {"type", "timestamp", "data"}
    assert payload["type"] == "order.completed"
    assert payload["data"] == api.get(f"/api/orders/{order_id}/").json()
    assert payload["data"]["result"] == {"receipt": "r-1"}
    assert payload["timestamp"] == payload["data"]["completed_at"]
    created = json.loads(Delivery.objects.filter(endpoint=everything).earliest("pk").body)
    assert (created["data"]["status"], created["timestamp"]) == ("PENDING", created["data"]["created_at"])
    # One webhook-id per event, whichever endpoints it goes to.
    assert completed.message_id == Delivery.objects.get(endpoint=everything, event_type="order.completed").message_id


@pytest.mark.django_db
def test_retries_going_back_to_pending_are_no_event_and_failures_and_cancels_are(settings):
    settings.ORDER_MAX_ATTEMPTS = 2
    endpoint = endpoint_create(url="http://127.0.0.1:9/all", events=["*"])
    failing, cancelled = create_order(), create_order()

    (claim,) = orders_claim(order_ids=[failing.pk])
    order_fail_attempt(claim=claim, reason="try again", delay=0)  # PROCESSING -> PENDING: no event
    (claim,) = orders_claim(order_ids=[failing.pk])
    order_fail_attempt(claim=claim, reason="no")  # the last attempt: FAILED
    order_retry(order_id=failing.pk)  # FAILED -> PENDING: no event
    order_cancel(order_id=cancelled.pk)

    failing_id, cancelled_id = str(failing.pk), str(cancelled.pk)
    assert events(endpoint) == [
        ("order.created", failing_id),
        ("order.created", cancelled_id),
        ("order.processing", failing_id),
        ("order.processing", failing_id),
        ("order.failed", failing_id),
        ("order.cancelled", cancelled_id),
    ]
    failed = json.loads(Delivery.objects.get(event_type="order.failed").body)
    assert (failed["data"]["status"], failed["data"]["failure_reason"]) == ("FAILED", "no")


@pytest.mark.django_db
def test_with_no_endpoint_subscribed_a_change_costs_one_query_and_writes_nothing(django_assert_num_queries):
    endpoint_create(url="http://127.0.0.1:9/done", events=["order.completed"])
    order = create_order()

    with django_assert_num_queries(1):
        webhooks_record_transitions(
            order_ids=[order.pk],
            from_status=Order.Status.PENDING,
            to_status=Order.Status.PROCESSING,
            now=order.created_at,
        )
    assert Delivery.objects.count() == 0


@pytest.mark.django_db
def test_a_disabled_endpoint_gets_no_new_deliveries():
    endpoint = endpoint_create(url="http://127.0.0.1:9/all", events=["*"])
    endpoint.__class__.objects.filter(pk=endpoint.pk).update(disabled_at=endpoint.created_at)

    create_order()

    assert Delivery.objects.count() == 0


def test_a_change_that_rolls_back_writes_and_sends_nothing(sender, receiver):
    endpoint = endpoint_create(url=receiver.url, events=["*"])
    receiver.secrets.append(endpoint.secret)
    sender()

    with pytest.raises(RuntimeError), transaction.atomic():
        rolled_back = create_order(user_id="rolled-back")
        raise RuntimeError("the caller's transaction fails after the order was written")
    assert Delivery.objects.count() == 0
    committed = create_order(user_id="committed")

    # Once the committed order's event is in, the rolled-back one would be too: the sender sends oldest first.
    wait_for(lambda: receiver.succeeded())
    assert [received.event["data"]["order_id"] for received in receiver.succeeded()] == [str(committed.pk)]
    assert str(rolled_back.pk) not in {str(delivery.order_id) for delivery in Delivery.objects.all()}
    assert receiver.unverified == []


# Per database: this connection's session, and whether a session waits for a row lock now. SQLite has one writer at a
# time, so nothing there can race.
SESSION = {"postgresql": "SELECT pg_backend_pid()", "mysql": "SELECT CONNECTION_ID()"}
WAITING = {
    "postgresql": "SELECT cardinality(pg_blocking_pids(%s)) > 0",
    "mysql": "SELECT count(*) > 0 FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT' "
    "AND trx_mysql_thread_id = %s",
}


def query_one(sql: str, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def waits_for_a_lock(session) -> bool:
    return connection.vendor not in WAITING or bool(query_one(WAITING[connection.vendor], [session]))


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_deleted_while_an_order_writes_its_delivery_waits_for_it_and_takes_it_along(monkeypatch):
    endpoint = endpoint_create(url="http://127.0.0.1:9/hook", events=["*"])
    endpoints_read, go_on = threading.Event(), threading.Event()
    insert = services._insert_deliveries

    def insert_once_the_deletion_started(**rows):
        endpoints_read.set()
        go_on.wait(10)
        insert(**rows)

    monkeypatch.setattr(services, "_insert_deliveries", insert_once_the_deletion_started)
    sessions = []

    def delete():
        if connection.vendor in SESSION:
            sessions.append(query_one(SESSION[connection.vendor]))
        endpoint_delete(endpoint_id=endpoint.pk)

    with ThreadPoolExecutor(2) as threads:
        try:
            creating = threads.submit(closing(lambda: create_order().pk))
            assert endpoints_read.wait(10)
            deleting = threads.submit(closing(delete))
            # The deletion waits for the order's transaction, which has read the endpoint: without a lock on the
            # endpoint's row, it would go first, and the order's delivery would then break its foreign key.
            wait_for(  # InnoDB's view of its locks is redone at most every 0.1 s
                lambda: deleting.done() or waits_for_a_lock(sessions[0] if sessions else None), interval=0.2
            )
        finally:
            go_on.set()
        order_id = creating.result(10)
        deleting.result(10)

    assert Order.objects.filter(pk=order_id).exists()
    assert not Endpoint.objects.exists()
    assert not Delivery.objects.exists()  # the deletion found the order's delivery, and removed it
    assert metrics_snapshot()["webhooks"]["deliveries"] == {"pending": 0, "succeeded": 0, "failed": 0}
