"""deliveries_send_due, the Celery workers' webhook sweep: it publishes each due delivery no task is out for, once,
however many workers sweep."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.helpers import run_concurrently, wait_for
from webhooks import wakeups
from webhooks.models import Delivery
from webhooks.services import deliveries_claim, deliveries_send_due, delivery_record_attempt, endpoint_create

pytestmark = pytest.mark.django_db(transaction=True)

LOST_AFTER = timedelta(minutes=5)


class Publisher:
    """Listens as CeleryBackend does, and keeps the ids of the deliveries each wake-up names that are due."""

    def __init__(self):
        self.published: list[int] = []

    def wake(self, deliveries) -> None:
        self.published += deliveries.due(timezone.now()).values_list("pk", flat=True)


@pytest.fixture
def publisher() -> Publisher:
    publisher = Publisher()
    wakeups.listen(publisher)
    return publisher


def new_delivery(order_id: uuid.UUID | None = None) -> Delivery:
    endpoint = endpoint_create(url="http://127.0.0.1:9/hook", events=["*"])
    return Delivery.objects.create(
        endpoint=endpoint,
        message_id=f"msg_{uuid.uuid4().hex}",
        event_type="order.created",
        order_id=order_id or uuid.uuid4(),
        body="{}",
    )


def sweep() -> list[int]:
    return deliveries_send_due(lost_after=LOST_AFTER, limit=100)


def test_a_new_delivery_is_left_to_the_publication_of_its_commit(publisher):
    new_delivery()

    assert sweep() == []
    assert publisher.published == []


def test_a_retry_whose_backoff_is_over_is_published_once(publisher, settings):
    settings.WEBHOOK_RETRY_BACKOFF_SECONDS = 0.5
    delivery = new_delivery()
    [attempt] = deliveries_claim(limit=1, delivery_ids=[delivery.pk])
    delivery_record_attempt(attempt=attempt, status_code=500, error="HTTP 500")

    assert sweep() == []  # its backoff is not over

    assert wait_for(sweep, timeout=5) == [delivery.pk]
    assert sweep() == []
    assert publisher.published == [delivery.pk]


def test_a_delivery_whose_lease_expired_is_published_once_by_one_of_many_sweepers(publisher, settings):
    settings.WEBHOOK_LEASE_SECONDS = 0.2
    delivery = new_delivery()
    deliveries_claim(limit=1, delivery_ids=[delivery.pk])  # by a worker killed since
    assert sweep() == []  # its lease is not over
    wait_for(lambda: Delivery.objects.due(timezone.now()).exists(), timeout=5)

    swept = run_concurrently(sweep, 8)

    assert sorted(swept) == [[]] * 7 + [[delivery.pk]]
    assert publisher.published == [delivery.pk]


def test_a_lost_message_is_published_again_once_per_period_and_a_later_event_waits_its_turn(publisher):
    order_id = uuid.uuid4()
    first = new_delivery(order_id)
    second = Delivery.objects.create(
        endpoint=first.endpoint, message_id="msg_2", event_type="order.processing", order_id=order_id, body="{}"
    )
    Delivery.objects.update(published_at=timezone.now() - LOST_AFTER - timedelta(seconds=1))

    assert sweep() == [first.pk]
    assert sweep() == []
    assert publisher.published == [first.pk]
    assert second.pk not in publisher.published
