"""Webhook metrics agree with the deliveries table after real sending, and metrics_rebuild finds nothing to fix."""

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Count, F, Sum
from prometheus_client.parser import text_string_to_metric_families

from metrics.histograms import DELIVERY_LATENCY, WEBHOOK_HISTOGRAMS
from metrics.models import Counter as MetricCounter
from metrics.selectors import metrics_snapshot
from metrics.services import metrics_rebuild
from orders.models import Order
from orders.services import order_create
from tests.helpers import run_concurrently, wait_for
from tests.metrics.test_metrics_exact import (
    assert_histogram_is,
    counter_rows,
    expected_histogram,
    rebuilding_meanwhile,
)
from tests.webhooks.test_delivery import create_orders, subscribe
from webhooks.models import Delivery
from webhooks.services import deliveries_claim, delivery_record_attempt, delivery_redeliver, endpoint_delete


def aggregate_from_deliveries() -> dict:
    """The webhook metrics recomputed independently, straight from the deliveries table."""
    by_status = dict(Delivery.objects.order_by().values_list("status").annotate(n=Count("pk")))
    succeeded = Delivery.objects.filter(status=Delivery.Status.SUCCEEDED).values_list("created_at", "delivered_at")
    latencies = [delivered_at - created_at for created_at, delivered_at in succeeded]
    return {
        "deliveries": {status.lower(): by_status.get(status, 0) for status in Delivery.Status.values},
        "attempts": Delivery.objects.aggregate(n=Sum("attempts"))["n"] or 0,
        "latency": expected_histogram(latencies, WEBHOOK_HISTOGRAMS[DELIVERY_LATENCY].bounds),
    }


def assert_webhook_metrics_match_deliveries() -> dict:
    webhooks, expected = metrics_snapshot()["webhooks"], aggregate_from_deliveries()
    assert webhooks["deliveries"] == expected["deliveries"]
    assert webhooks["attempts"] == expected["attempts"]
    assert_histogram_is(webhooks["latency"], expected["latency"])
    return webhooks


def no_delivery_in(*statuses: str) -> bool:
    return not Delivery.objects.filter(status__in=statuses).exists()


def all_orders_completed() -> bool:
    return not Order.objects.exclude(status=Order.Status.COMPLETED).exists()


def test_sending_with_retries_failures_a_redelivery_and_a_deleted_endpoint_keeps_webhook_metrics_exact(
    order_worker, receivers, settings
):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    settings.WEBHOOK_ENDPOINT_CONCURRENCY = 2  # so the slow endpoint still has deliveries waiting when it is deleted
    down = True
    flaky = receivers(lambda attempt, event: 503 if attempt == 1 and event["type"] == "order.processing" else 200)
    failing = receivers(lambda attempt, event: 503 if down else 200)
    slow = receivers(lambda attempt, event: (200, 0.5))  # the longest latencies: its deletion lowers the maximum
    subscribe(flaky)
    subscribe(failing, ["order.created"])
    doomed = subscribe(slow, ["order.completed"])

    run_concurrently(lambda: create_orders(3), 10)
    wait_for(lambda: Delivery.objects.filter(endpoint=doomed, status=Delivery.Status.SUCCEEDED).count() >= 3)
    assert Delivery.objects.filter(endpoint=doomed, status=Delivery.Status.PENDING).exists()
    endpoint_delete(endpoint_id=doomed.pk)
    wait_for(lambda: all_orders_completed() and no_delivery_in(Delivery.Status.PENDING), timeout=60)

    first = assert_webhook_metrics_match_deliveries()
    assert first["deliveries"] == {"pending": 0, "succeeded": 90, "failed": 30}
    # the flaky endpoint's three events (order.processing retried once), and three attempts of each failed one
    assert first["attempts"] == 30 + 30 * 2 + 30 + 30 * 3

    down = False
    for delivery_id in Delivery.objects.filter(status=Delivery.Status.FAILED).values_list("pk", flat=True):
        delivery_redeliver(delivery_id=delivery_id)  # the admin's Redeliver
    wait_for(lambda: no_delivery_in(Delivery.Status.PENDING, Delivery.Status.FAILED), timeout=60)
    again = assert_webhook_metrics_match_deliveries()
    assert again["deliveries"] == {"pending": 0, "succeeded": 120, "failed": 0}
    assert again["attempts"] == 30 + 30 * 2 + 30 + 30  # a redelivery starts its count again

    rows = counter_rows()
    assert metrics_rebuild() == 0
    assert counter_rows() == rows


def test_rebuilds_while_deliveries_are_written_and_sent_leave_every_webhook_metric_exact(
    order_worker, receivers, settings
):
    # Each delivery change is counted either by the rebuild, from the deliveries table, or on top of it: never both.
    # The rebuilds stop while deliveries are still being sent, so no later rebuild hides a change counted twice.
    settings.WEBHOOK_ENDPOINT_CONCURRENCY = 2
    subscribe(
        receivers(lambda attempt, event: 503 if attempt == 1 and event["type"] == "order.completed" else (200, 0.02))
    )
    with rebuilding_meanwhile():
        run_concurrently(lambda: create_orders(5), 10)
        wait_for(lambda: Delivery.objects.filter(status=Delivery.Status.SUCCEEDED).count() >= 50, timeout=60)
    assert not no_delivery_in(Delivery.Status.PENDING)
    wait_for(lambda: all_orders_completed() and no_delivery_in(Delivery.Status.PENDING), timeout=60)

    assert assert_webhook_metrics_match_deliveries()["deliveries"] == {"pending": 0, "succeeded": 150, "failed": 0}
    assert metrics_rebuild() == 0


def deliver(attempts, *, after: dict) -> None:
    """Record a 2xx for each attempt, this long after its event, per endpoint."""
    created = dict(Delivery.objects.values_list("pk", "created_at"))
    for attempt in attempts:
        now = created[attempt.delivery_id] + after[attempt.endpoint_id]
        delivery_record_attempt(attempt=attempt, status_code=200, now=now)


def test_deleting_an_endpoint_uncounts_its_deliveries_and_lowers_the_latency_maximum(db, receivers):
    slow, fast = subscribe(receivers()), subscribe(receivers())
    for n in range(2):
        order_create(user_id="u", item_ids=[1], total_amount=Decimal(n))
    deliver(deliveries_claim(limit=10), after={slow.pk: timedelta(seconds=10), fast.pk: timedelta(seconds=1)})
    order_create(user_id="u", item_ids=[1], total_amount=Decimal(2))
    deliveries_claim(limit=10)  # one attempt each, in flight when the endpoint goes
    assert metrics_snapshot()["webhooks"]["latency"]["max"] == 10.0

    endpoint_delete(endpoint_id=slow.pk)

    webhooks = assert_webhook_metrics_match_deliveries()
    assert webhooks["deliveries"] == {"pending": 1, "succeeded": 2, "failed": 0}
    assert webhooks["attempts"] == 3
    assert webhooks["latency"]["max"] == 1.0
    assert metrics_rebuild() == 0


def test_pruning_deletes_only_deliveries_that_succeeded_long_ago_and_uncounts_them(db, receivers, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    subscribe(receivers(), ["order.created"])
    create_orders(3)
    old, recent, failed = deliveries_claim(limit=10)
    created = dict(Delivery.objects.values_list("pk", "created_at"))
    delivery_record_attempt(attempt=old, status_code=200, now=created[old.delivery_id] + timedelta(seconds=10))
    delivery_record_attempt(attempt=recent, status_code=200, now=created[recent.delivery_id] + timedelta(seconds=1))
    delivery_record_attempt(attempt=failed, status_code=500)
    eight_days = timedelta(days=8)  # past the default 7 days' retention, latencies kept
    Delivery.objects.filter(pk__in=[old.delivery_id, failed.delivery_id]).update(
        created_at=F("created_at") - eight_days, delivered_at=F("delivered_at") - eight_days
    )

    output = StringIO()
    call_command("prune_webhook_deliveries", stdout=output)

    assert output.getvalue() == "Deleted 1 webhook deliveries.\n"
    assert set(Delivery.objects.values_list("pk", flat=True)) == {recent.delivery_id, failed.delivery_id}
    webhooks = assert_webhook_metrics_match_deliveries()
    assert webhooks["latency"]["max"] == 1.0
    assert metrics_rebuild() == 0


def test_rebuild_repairs_drifted_webhook_counters(transactional_db, receivers):
    subscribe(receivers())
    create_orders(3)
    MetricCounter.objects.filter(name="deliveries.PENDING").update(value=99)
    MetricCounter.objects.create(name="deliveries.FAILED", shard=5, value=7)
    MetricCounter.objects.create(name="delivery_attempts", shard=2, value=4)
    MetricCounter.objects.create(name=f"{DELIVERY_LATENCY}.max_us", shard=3, value=5_000_000)

    call_command("metrics_rebuild")

    webhooks = assert_webhook_metrics_match_deliveries()
    assert webhooks["deliveries"] == {"pending": 3, "succeeded": 0, "failed": 0}
    assert (webhooks["attempts"], webhooks["latency"]["max"]) == (0, None)
    assert metrics_rebuild() == 0


def test_prometheus_webhook_metrics_parse_and_match_the_json(db, receivers, client):
    slow, fast = subscribe(receivers()), subscribe(receivers())
    for n in range(3):
        order_create(user_id="u", item_ids=[1], total_amount=Decimal(n))
    deliver(deliveries_claim(limit=4), after={slow.pk: timedelta(seconds=3), fast.pk: timedelta(seconds=0.2)})

    response = client.get("/metrics")
    webhooks = client.get("/api/metrics/").json()["webhooks"]

    families = {family.name: family for family in text_string_to_metric_families(response.content.decode())}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert webhooks["deliveries"] == {"pending": 2, "succeeded": 4, "failed": 0}
    for status, count in webhooks["deliveries"].items():
        assert samples["webhook_deliveries", (("status", status.upper()),)] == count
    assert samples["webhook_delivery_attempts", ()] == webhooks["attempts"] == 4
    assert families["webhook_delivery_latency_seconds"].type == "histogram"
    assert samples["webhook_delivery_latency_seconds_count", ()] == webhooks["latency"]["count"] == 4
    assert samples["webhook_delivery_latency_seconds_sum", ()] == pytest.approx(webhooks["latency"]["sum"]) == 6.4
    for bucket in webhooks["latency"]["buckets"]:
        assert samples["webhook_delivery_latency_seconds_bucket", (("le", bucket["le"]),)] == bucket["count"]
