"""Sending: the real sender to real receivers on 127.0.0.1, each delivery verified with the standardwebhooks library."""

import json
import time
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from order_system.threads import requests_in_flight
from orders.models import Order
from orders.services import order_create, orders_claim
from tests.helpers import free_port, wait_for
from webhooks import sender as sender_module
from webhooks.models import Delivery, Endpoint
from webhooks.sender import DeliverySender
from webhooks.services import (
    Outcome,
    deliveries_claim,
    deliveries_record,
    deliveries_release_stranded,
    delivery_record_attempt,
    endpoint_create,
    endpoint_enable,
)
from webhooks.signing import new_secret

LIFECYCLE = ["order.created", "order.processing", "order.completed"]


def subscribe(receiver, events=("*",)) -> Endpoint:
    endpoint = endpoint_create(url=receiver.url, events=list(events))
    receiver.secrets.append(endpoint.secret)
    return endpoint


def create_orders(count: int) -> list[str]:
    return [str(order_create(user_id=f"u{n}", item_ids=[1], total_amount=Decimal("1.00"))[0].pk) for n in range(count)]


def events_by_order(received) -> dict[str, list[str]]:
    """Each order's event types, in the order the receiver accepted them."""
    by_order: dict[str, list[str]] = {}
    for request in received:
        by_order.setdefault(request.event["data"]["order_id"], []).append(request.event["type"])
    return by_order


def test_orders_processed_by_the_worker_send_created_processing_completed_in_order_signed(order_worker, receiver):
    subscribe(receiver)

    order_ids = create_orders(5)

    received = wait_for(receiver.succeeded, until=lambda got: len(got) == 15)
    assert receiver.unverified == []
    assert events_by_order(received) == {order_id: LIFECYCLE for order_id in order_ids}
    completed = [request.event for request in received if request.event["type"] == "order.completed"]
    assert all(event["data"]["status"] == "COMPLETED" for event in completed)
    assert len({request.message_id for request in received}) == 15
    wait_for(lambda: Delivery.objects.filter(status=Delivery.Status.SUCCEEDED, attempts=1).count() == 15)


def test_a_tampered_body_or_an_old_timestamp_fails_the_receivers_check(sender, receiver):
    endpoint = subscribe(receiver)
    sender()

    create_orders(1)

    (delivered,) = wait_for(receiver.succeeded)
    Webhook(endpoint.secret).verify(delivered.body, delivered.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint.secret).verify(delivered.body.replace(b'"u0"', b'"u1"'), delivered.headers)
    old = {**delivered.headers, "webhook-timestamp": str(int(time.time()) - 600)}
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(endpoint.secret).verify(delivered.body, old)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(delivered.body, delivered.headers)


def test_a_retry_sends_the_same_webhook_id_and_body_until_a_2xx(sender, receivers):
    receiver = receivers(lambda attempt, event: 500 if attempt == 1 else 404 if attempt == 2 else 204)
    subscribe(receiver, ["order.created"])
    sender()

    create_orders(1)

    wait_for(receiver.succeeded)
    assert [request.answered for request in receiver.requests] == [500, 404, 204]
    assert len({request.message_id for request in receiver.requests}) == 1
    assert len({request.body for request in receiver.requests}) == 1
    delivery = wait_for(lambda: Delivery.objects.filter(status=Delivery.Status.SUCCEEDED).first())
    assert (delivery.attempts, delivery.last_status_code) == (3, 204)
    assert receiver.unverified == []


def test_a_flaky_receiver_gets_everything_once_and_each_orders_events_in_order(order_worker, receivers, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 2.0

    def flaky(attempt: int, event: dict) -> int | tuple[int, float]:
        order = int(event["data"]["order_id"][-4:], 16)
        if attempt == 1 and order % 3 == 0:
            return 500
        if attempt == 1 and order % 7 == 0:
            return 200, 0.5  # hangs a while, within the timeout
        return 200

    receiver = receivers(flaky)
    subscribe(receiver)

    order_ids = create_orders(30)

    received = wait_for(receiver.succeeded, until=lambda got: len(got) >= 90, timeout=60)
    assert receiver.unverified == []
    assert len(received) == 90
    assert len({request.message_id for request in received}) == 90  # exactly one 2xx per webhook-id
    assert events_by_order(received) == {order_id: LIFECYCLE for order_id in order_ids}
    assert any(request.answered == 500 for request in receiver.requests)


def test_one_hanging_endpoint_does_not_hold_up_another(sender, receivers, settings):
    settings.WEBHOOK_ENDPOINT_CONCURRENCY = 2
    settings.WEBHOOK_TIMEOUT_SECONDS = 5.0
    hanging = receivers(lambda attempt, event: (200, 3.0))
    healthy = receivers()
    subscribe(hanging, ["order.created"])
    subscribe(healthy, ["order.created"])
    sender(concurrency=4)

    create_orders(20)

    # The hanging endpoint holds 2 of the 4 slots; the healthy one gets its 20 through the other two meanwhile.
    started = time.monotonic()
    wait_for(healthy.succeeded, until=lambda got: len(got) == 20, timeout=10)
    assert time.monotonic() - started < 3.0
    assert len(hanging.succeeded()) <= 2


def test_deliveries_wait_while_the_receiver_is_down_then_arrive_and_orders_are_not_held_up(order_worker, receivers):
    port = free_port()
    endpoint = endpoint_create(url=f"http://127.0.0.1:{port}/hook", events=["*"])

    order_ids = create_orders(10)

    # The receiver is down: every order completes anyway, while their deliveries are retried.
    wait_for(lambda: Order.objects.filter(status=Order.Status.COMPLETED).count() == 10, timeout=10)
    wait_for(lambda: Delivery.objects.filter(attempts__gte=2).count() >= 10)
    assert not Delivery.objects.filter(status=Delivery.Status.SUCCEEDED).exists()
    assert "ConnectError" in Delivery.objects.filter(attempts__gte=2).first().last_error

    receiver = receivers(port=port)
    receiver.secrets.append(endpoint.secret)
    received = wait_for(receiver.succeeded, until=lambda got: len(got) == 30, timeout=30)
    assert events_by_order(received) == {order_id: LIFECYCLE for order_id in order_ids}
    assert receiver.unverified == []


def test_after_the_last_attempt_a_delivery_is_failed_and_the_admin_redelivers_it(sender, receivers, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    down = True
    receiver = receivers(lambda attempt, event: 503 if down else 200)
    subscribe(receiver, ["order.created"])
    sender()
    create_orders(1)

    failed = wait_for(lambda: Delivery.objects.filter(status=Delivery.Status.FAILED).first())
    assert (failed.attempts, failed.last_status_code, failed.last_error) == (3, 503, "HTTP 503")
    assert len(receiver.requests) == 3

    down = False
    admin = Client()
    admin.force_login(User.objects.create_superuser("admin"))
    listed = admin.get("/admin/webhooks/delivery/?status=FAILED")
    assert failed.message_id in listed.content.decode()
    response = admin.post(
        "/admin/webhooks/delivery/", {"action": "redeliver", "_selected_action": [failed.pk]}, follow=True
    )
    assert "1 delivery(ies) redelivered." in response.content.decode()

    wait_for(receiver.succeeded)
    delivered = wait_for(lambda: Delivery.objects.filter(status=Delivery.Status.SUCCEEDED).first())
    assert delivered.attempts == 1
    assert {request.message_id for request in receiver.requests} == {failed.message_id}
    assert receiver.unverified == []


@pytest.mark.django_db
def test_an_endpoint_failing_everything_for_a_day_is_disabled_and_says_so(api, settings):
    settings.WEBHOOK_RETRY_BACKOFF_SECONDS = 60.0
    endpoint = endpoint_create(url="http://127.0.0.1:9/hook", events=["*"])
    create_orders(1)
    start = timezone.now()

    def fail_once_at(now):
        (attempt,) = deliveries_claim(limit=1, now=now)
        delivery_record_attempt(attempt=attempt, status_code=500, error="HTTP 500", now=now)

    fail_once_at(start)
    fail_once_at(start + timedelta(hours=23))
    assert api.get(f"/api/webhooks/{endpoint.pk}/").json()["disabled_at"] is None
    fail_once_at(start + timedelta(hours=24, seconds=1))

    shown = api.get(f"/api/webhooks/{endpoint.pk}/").json()
    assert shown["disabled_at"] is not None
    assert shown["disabled_reason"] == "Every attempt failed for 24 hours; the last: HTTP 500"
    assert deliveries_claim(limit=1, now=start + timedelta(days=2)) == []
    create_orders(1)
    assert Delivery.objects.count() == 1  # a disabled endpoint gets no new events


@pytest.mark.django_db
def test_a_success_resets_the_endpoints_day_of_failures(settings):
    settings.WEBHOOK_RETRY_BACKOFF_SECONDS = 60.0
    endpoint = endpoint_create(url="http://127.0.0.1:9/hook", events=["order.created"])
    create_orders(2)
    start = timezone.now()

    first, second = deliveries_claim(limit=2, now=start)  # two orders: each its own line
    delivery_record_attempt(attempt=first, status_code=500, now=start)
    delivery_record_attempt(attempt=second, status_code=200, now=start + timedelta(hours=20))
    (retry,) = deliveries_claim(limit=1, now=start + timedelta(hours=25))
    delivery_record_attempt(attempt=retry, status_code=500, now=start + timedelta(hours=25))

    endpoint.refresh_from_db()
    assert endpoint.disabled_at is None
    assert endpoint.failing_since == start + timedelta(hours=25)


@pytest.mark.django_db(transaction=True)
def test_a_success_beside_failures_in_one_batch_keeps_a_day_failing_endpoint_enabled(settings):
    endpoint = endpoint_create(url="http://127.0.0.1:9/hook", events=["order.created"])
    create_orders(2)
    now = timezone.now()
    Endpoint.objects.filter(pk=endpoint.pk).update(failing_since=now - timedelta(hours=30))
    ok, failing = deliveries_claim(limit=2, now=now)

    deliveries_record(outcomes=[Outcome(ok, 200), Outcome(failing, 500, "HTTP 500")], now=now)

    endpoint.refresh_from_db()
    assert endpoint.disabled_at is None
    assert endpoint.failing_since == now  # a new streak, from the failure beside the success


@pytest.mark.django_db(transaction=True)
def test_only_the_oldest_unfinished_delivery_of_an_endpoint_and_order_is_due():
    endpoint_create(url="http://127.0.0.1:9/hook", events=["*"])
    first, second = create_orders(2)
    orders_claim(order_ids=[UUID(first)])  # first's order.processing waits behind its order.created
    now = timezone.now()

    claimed = deliveries_claim(limit=10, now=now)
    assert [
        (json.loads(attempt.body)["type"], json.loads(attempt.body)["data"]["order_id"]) for attempt in claimed
    ] == [
        ("order.created", first),
        ("order.created", second),
    ]
    assert deliveries_claim(limit=10, now=now) == []  # leased, and the next in line waits
    delivery_record_attempt(attempt=claimed[0], status_code=200, now=now)
    (processing,) = deliveries_claim(limit=10, now=now)
    assert json.loads(processing.body)["type"] == "order.processing"
    again = deliveries_claim(limit=10, now=now + timedelta(seconds=6))  # a dead sender's leases are over
    assert {attempt.message_id for attempt in again} == {claimed[1].message_id, processing.message_id}


@pytest.mark.django_db(transaction=True)
def test_a_later_event_waits_unclaimable_until_the_one_before_succeeds_or_finally_fails(settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    endpoint_create(url="http://127.0.0.1:9/hook", events=["*"])
    first, second = create_orders(2)
    orders_claim(order_ids=[UUID(first), UUID(second)])
    processing = Delivery.objects.filter(event_type="order.processing").order_by("pk")
    assert list(processing.values_list("available_at", flat=True)) == [None, None]  # out of the claims' index
    now = timezone.now()

    first_created, second_created = deliveries_claim(limit=10, now=now)
    delivery_record_attempt(attempt=first_created, status_code=200, now=now)
    delivery_record_attempt(attempt=second_created, status_code=500, now=now)  # to be retried

    released, still_waiting = processing
    assert released.available_at == released.created_at  # due since its event
    assert still_waiting.available_at is None
    later = now + timedelta(minutes=1)  # the retry's backoff is over
    claimed = deliveries_claim(limit=10, now=later)
    assert [attempt.delivery_id for attempt in claimed] == [second_created.delivery_id, released.pk]
    delivery_record_attempt(attempt=claimed[0], status_code=500, now=later)  # its last attempt: FAILED
    (attempt,) = deliveries_claim(limit=10, now=later)
    assert attempt.delivery_id == still_waiting.pk


@pytest.mark.django_db(transaction=True)
def test_an_event_written_after_the_one_before_it_finished_is_due_once_it_commits():
    endpoint_create(url="http://127.0.0.1:9/hook", events=["*"])
    (order,) = create_orders(1)
    (created,) = deliveries_claim(limit=10)
    delivery_record_attempt(attempt=created, status_code=200)

    orders_claim(order_ids=[UUID(order)])  # order.processing is written waiting, and released once committed

    (processing,) = deliveries_claim(limit=10)
    assert json.loads(processing.body)["type"] == "order.processing"
    assert Delivery.objects.get(pk=processing.delivery_id).available_at == processing.created_at


@pytest.mark.django_db(transaction=True)
def test_a_disabled_endpoints_deliveries_all_wait_and_enabling_releases_each_orders_first(settings):
    settings.WEBHOOK_RETRY_BACKOFF_SECONDS = 60.0
    endpoint = endpoint_create(url="http://127.0.0.1:9/hook", events=["*"])
    first, second = create_orders(2)
    orders_claim(order_ids=[UUID(first), UUID(second)])
    start = timezone.now()
    for now in (start, start + timedelta(hours=24, seconds=1)):
        (attempt,) = deliveries_claim(limit=1, now=now)  # first's order.created, then its retry
        delivery_record_attempt(attempt=attempt, status_code=500, error="HTTP 500", now=now)

    endpoint.refresh_from_db()
    assert endpoint.disabled_at is not None
    assert Delivery.objects.exclude(available_at=None).count() == 0  # all four wait

    endpoint_enable(endpoint_id=endpoint.pk)

    released = Delivery.objects.exclude(available_at=None).order_by("pk")
    assert [(delivery.event_type, str(delivery.order_id)) for delivery in released] == [
        ("order.created", first),
        ("order.created", second),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_delivery_a_crash_left_waiting_with_nothing_ahead_is_released_by_the_stranded_sweep():
    endpoint_create(url="http://127.0.0.1:9/hook", events=["*"])
    (order,) = create_orders(1)
    orders_claim(order_ids=[UUID(order)])
    Delivery.objects.update(available_at=None)  # as if the process died between its commits and their releases
    assert deliveries_claim(limit=10) == []

    assert deliveries_release_stranded() == 1

    (attempt,) = deliveries_claim(limit=10)
    assert json.loads(attempt.body)["type"] == "order.created"
    assert Delivery.objects.get(event_type="order.processing").available_at is None  # still behind it
    assert deliveries_release_stranded() == 0


@pytest.mark.django_db
def test_a_lease_taken_over_writes_nothing():
    endpoint_create(url="http://127.0.0.1:9/hook", events=["*"])
    create_orders(1)
    now = timezone.now()
    (dead,) = deliveries_claim(limit=1, now=now)
    (alive,) = deliveries_claim(limit=1, now=now + timedelta(seconds=6))

    assert delivery_record_attempt(attempt=dead, status_code=200, now=now) is None
    assert delivery_record_attempt(attempt=alive, status_code=200) == Delivery.Status.SUCCEEDED
    assert Delivery.objects.get().attempts == 2


@pytest.mark.django_db(transaction=True)
def test_a_batch_of_outcomes_writes_those_still_leased_each_with_its_own_status_code():
    endpoint_create(url="http://127.0.0.1:9/hook", events=["order.created"])
    create_orders(3)
    now = timezone.now()
    first, second, third = deliveries_claim(limit=3, now=now)
    later = now + timedelta(minutes=1)  # second's lease is over, and another sender takes it
    deliveries_claim(limit=1, now=later, delivery_ids=[second.delivery_id])

    outcomes = [Outcome(first, 200), Outcome(second, 204), Outcome(third, 202)]
    statuses = deliveries_record(outcomes=outcomes, now=later)

    assert statuses == {first.delivery_id: Delivery.Status.SUCCEEDED, third.delivery_id: Delivery.Status.SUCCEEDED}
    assert dict(Delivery.objects.values_list("pk", "last_status_code")) == {
        first.delivery_id: 200,
        second.delivery_id: None,
        third.delivery_id: 202,
    }


def test_a_committed_event_wakes_the_sender_at_once_without_waiting_for_its_sweep(sender, receiver, settings):
    settings.WEBHOOK_SWEEP_SECONDS = 60.0
    subscribe(receiver, ["order.created"])
    sender()
    time.sleep(0.2)  # its first sweep, at start, found nothing: the next is a minute away

    started = time.monotonic()
    create_orders(1)

    wait_for(receiver.succeeded, timeout=5)
    assert time.monotonic() - started < 2.0


def test_the_sender_waits_while_this_process_answers_requests_then_sends(sender, receiver, settings):
    settings.WEBHOOK_SWEEP_SECONDS = 60.0
    subscribe(receiver, ["order.created"])
    sender()
    time.sleep(0.2)  # its first sweep, at start, found nothing

    with requests_in_flight:  # a request being answered, as CountRequests counts it
        create_orders(1)
        time.sleep(0.5)  # woken by the commit, the sender waits for the request to end
        assert receiver.succeeded() == []

    wait_for(receiver.succeeded, timeout=5)


def test_under_constant_requests_the_sender_still_sends_after_yield_seconds_then_takes_a_turn(
    sender, receiver, monkeypatch
):
    monkeypatch.setattr(sender_module, "YIELD_SECONDS", 0.3)
    monkeypatch.setattr(sender_module, "TURN_SECONDS", 60.0)
    subscribe(receiver, ["order.created"])
    sender()

    with requests_in_flight:
        create_orders(1)
        wait_for(receiver.succeeded, timeout=5)  # after giving way for 0.3 s
        monkeypatch.setattr(sender_module, "YIELD_SECONDS", 60.0)
        create_orders(1)
        wait_for(receiver.succeeded, until=lambda got: len(got) == 2, timeout=10)  # its turn: no waiting


def test_a_stopping_sender_lets_requests_in_flight_end_and_writes_how_they_went(sender, receivers):
    receiver = receivers(lambda attempt, event: (200, 0.5))
    subscribe(receiver, ["order.created"])
    running = sender()
    create_orders(5)
    wait_for(lambda: running.in_flight == 5)

    running.stop(timeout=5)

    assert len(receiver.succeeded()) == 5
    assert Delivery.objects.filter(status=Delivery.Status.SUCCEEDED, leased_until=None).count() == 5


def test_the_admin_enables_a_disabled_endpoint_and_its_waiting_deliveries_go(sender, receiver):
    endpoint = subscribe(receiver, ["order.created"])
    create_orders(1)
    Endpoint.objects.filter(pk=endpoint.pk).update(
        disabled_at=timezone.now(), disabled_reason="Every attempt failed", failing_since=timezone.now()
    )
    sender()

    admin = Client()
    admin.force_login(User.objects.create_superuser("admin"))
    response = admin.post(
        "/admin/webhooks/endpoint/", {"action": "enable", "_selected_action": [endpoint.pk]}, follow=True
    )

    assert "1 endpoint(s) enabled." in response.content.decode()
    wait_for(receiver.succeeded)
    endpoint.refresh_from_db()
    assert (endpoint.disabled_at, endpoint.disabled_reason, endpoint.failing_since) == (None, "", None)
    again = admin.post(
        "/admin/webhooks/endpoint/", {"action": "enable", "_selected_action": [endpoint.pk]}, follow=True
    )
    assert "1 endpoint(s) skipped: not disabled." in again.content.decode()


def test_a_sender_whose_rounds_fail_says_why_in_the_log_and_to_readyz(start_worker, monkeypatch, client, caplog):
    async def broken(self, database, client):
        raise RuntimeError("a bug in the sender")

    monkeypatch.setattr(DeliverySender, "_claim", broken)
    backend = start_worker()

    wait_for(lambda: backend.health() is not None)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["problems"] == {"queue": "the webhook sender of this process is not running"}
    [stopped] = [record for record in caplog.records if record.getMessage().startswith("the webhook sender stopped")]
    assert stopped.exc_info[1].args == ("a bug in the sender",)
