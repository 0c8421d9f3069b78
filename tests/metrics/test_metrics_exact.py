"""Metrics agree with the orders table after real concurrent work, and metrics_rebuild finds nothing to fix."""

import bisect
import contextlib
import random
import threading
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from metrics.histograms import HISTOGRAMS
from metrics.models import Counter as MetricCounter
from metrics.selectors import metrics_snapshot
from metrics.services import metrics_batch, metrics_rebuild, metrics_record_transitions, shard_of
from orders.models import Order
from orders.services import (
    OrderNotInStatus,
    order_cancel,
    order_create,
    order_fail_attempt,
    order_retry,
    orders_claim,
    orders_complete,
    orders_expire_leases,
    orders_release,
)
from tests.factories import claim_one
from tests.helpers import run_concurrently, wait_for


def aggregate_from_orders() -> dict:
    """The metrics recomputed independently, straight from the orders table."""
    by_status = Counter(dict(Order.objects.values_list("status").annotate(n=Sum(1)).values_list("status", "n")))
    by_status = {status: by_status.get(status, 0) for status in Order.Status.values}
    finished_attempts = sum(by_status[s] for s in ("PROCESSING", "COMPLETED", "FAILED"))
    totals = Order.objects.aggregate(attempts=Sum("attempts"), failed=Sum("times_failed"))
    latencies = {name: [] for name in HISTOGRAMS}
    for created, started, completed in Order.objects.filter(status="COMPLETED").values_list(
        "created_at", "started_at", "completed_at"
    ):
        latencies["processing"].append(completed - started)
        latencies["queue_wait"].append(started - created)
        latencies["end_to_end"].append(completed - created)
    return {
        "by_status": by_status,
        "failed": totals["failed"] or 0,
        "retried": (totals["attempts"] or 0) - finished_attempts,
        "histograms": {
            name: expected_histogram(durations, HISTOGRAMS[name].bounds) for name, durations in latencies.items()
        },
    }


def expected_histogram(durations: list[timedelta], bounds: tuple[float, ...]) -> dict:
    """What a histogram of these durations holds: its count, sum, max and cumulative buckets."""
    micros = [
        duration.days * 86_400_000_000 + duration.seconds * 1_000_000 + duration.microseconds for duration in durations
    ]
    bounds_us = [round(bound * 1_000_000) for bound in bounds]
    per_bucket = Counter(bisect.bisect_left(bounds_us, value) for value in micros)
    cumulative = [sum(per_bucket[i] for i in range(index + 1)) for index in range(len(bounds_us) + 1)]
    return {
        "count": len(micros),
        "sum": sum(micros) / 1e6,
        "max": max(micros) / 1e6 if micros else None,
        "cumulative": cumulative,
    }


def assert_histogram_is(histogram: dict, wanted: dict) -> None:
    assert histogram["count"] == wanted["count"]
    assert histogram["sum"] == pytest.approx(wanted["sum"], abs=1e-6)
    assert histogram["max"] == wanted["max"]
    assert [bucket["count"] for bucket in histogram["buckets"]] == wanted["cumulative"]


def assert_metrics_match_orders() -> dict:
    snapshot, expected = metrics_snapshot(), aggregate_from_orders()
    assert snapshot["orders_by_status"] == expected["by_status"]
    assert snapshot["total_orders"] == snapshot["totals"]["created"] == Order.objects.count()
    assert snapshot["totals"]["failed"] == expected["failed"]
    assert snapshot["totals"]["retried"] == snapshot["retries_total"] == expected["retried"]
    for key, name in [
        ("processing_time_seconds", "processing"),
        ("queue_wait_seconds", "queue_wait"),
        ("end_to_end_seconds", "end_to_end"),
    ]:
        assert_histogram_is(snapshot[key], expected["histograms"][name])
    return snapshot


def counter_rows() -> set[tuple]:
    return set(MetricCounter.objects.values_list("name", "shard", "value"))


@pytest.fixture
def failures_and_rejections(settings):
    settings.ORDER_PROCESSOR = "tests.processors.fail_or_reject_some"
    settings.ORDER_PROCESSING_SECONDS = (0.0, 0.02)
    settings.ORDER_FAILURE_RATE = 0.2
    settings.ORDER_MAX_ATTEMPTS = 2  # so FAILED orders are certain to occur (1 in 25), not just likely


def test_300_concurrent_orders_with_failures_retries_and_cancels_keep_metrics_exact(
    failures_and_rejections, order_worker, settings
):
    amounts = iter(range(300))

    def place_and_maybe_cancel():
        order, _ = order_create(user_id="u", item_ids=[1], total_amount=Decimal(next(amounts)))
        if random.random() < 0.1:
            with contextlib.suppress(OrderNotInStatus):  # a worker may get there first
                order_cancel(order_id=order.pk)
        return order

    # 50 threads x 6 orders: 300 concurrent orders within PostgreSQL's default 100 connections
    run_concurrently(lambda: [place_and_maybe_cancel() for _ in range(6)], 50)
    final = (Order.Status.COMPLETED, Order.Status.FAILED, Order.Status.CANCELLED)
    wait_for(lambda: not Order.objects.exclude(status__in=final).exists(), timeout=120)
    first = assert_metrics_match_orders()
    assert first["orders_by_status"]["FAILED"] > 0 and first["retries_total"] > 0

    for order_id in Order.objects.filter(status=Order.Status.FAILED).values_list("pk", flat=True):
        order_retry(order_id=order_id)  # the admin's Retry
    wait_for(lambda: not Order.objects.exclude(status__in=final).exists(), timeout=120)
    assert_metrics_match_orders()

    rows = counter_rows()
    assert metrics_rebuild() == 0
    assert counter_rows() == rows


def test_rebuild_repairs_a_drifted_counter(transactional_db):
    for _ in range(3):
        order_create(user_id="u", item_ids=[1], total_amount=Decimal(1))
    MetricCounter.objects.filter(name="status.PENDING").update(value=99)
    MetricCounter.objects.create(name="status.FAILED", shard=5, value=7)

    call_command("metrics_rebuild")

    assert metrics_snapshot()["orders_by_status"]["PENDING"] == 3
    assert metrics_snapshot()["orders_by_status"]["FAILED"] == 0
    assert metrics_rebuild() == 0


@contextlib.contextmanager
def rebuilding_meanwhile():
    """Run metrics_rebuild again and again on a thread of its own while the block runs: at least twice, and each finds
    nothing to change, since every writer counts in its own transaction."""
    done = threading.Event()
    rebuilds = []

    def rebuild_until_done() -> None:
        try:
            while not done.is_set():
                rebuilds.append(metrics_rebuild())
        finally:
            connection.close()

    rebuilder = threading.Thread(target=rebuild_until_done)
    rebuilder.start()
    try:
        yield
    finally:
        done.set()
        rebuilder.join(60)
    assert len(rebuilds) >= 2
    assert set(rebuilds) == {0}


def test_a_rebuild_while_orders_are_created_and_processed_leaves_every_metric_exact(order_worker):
    # Each change is counted either by the rebuild, from the orders table, or on top of it: never by both, never lost.
    with rebuilding_meanwhile():
        run_concurrently(
            lambda: [order_create(user_id="u", item_ids=[1], total_amount=Decimal(1)) for _ in range(50)], 10
        )
        wait_for(lambda: not Order.objects.exclude(status=Order.Status.COMPLETED).exists(), timeout=120)

    assert_metrics_match_orders()
    assert metrics_rebuild() == 0


def test_prometheus_output_parses_and_matches_the_json(order_worker, client):
    for _ in range(5):
        order_create(user_id="u", item_ids=[1], total_amount=Decimal(1))
    wait_for(lambda: not Order.objects.exclude(status=Order.Status.COMPLETED).exists())

    response = client.get("/metrics")
    snapshot = client.get("/api/metrics/").json()

    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {family.name: family for family in text_string_to_metric_families(response.content.decode())}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples["orders_created_total", ()] == snapshot["totals"]["created"] == 5
    assert samples["orders_completed_total", ()] == 5
    for status, count in snapshot["orders_by_status"].items():
        assert samples["orders_status", (("status", status),)] == count
    assert families["order_processing_seconds"].type == "histogram"
    assert samples["order_processing_seconds_count", ()] == snapshot["processing_time_seconds"]["count"] == 5
    assert samples["order_processing_seconds_sum", ()] == pytest.approx(snapshot["processing_time_seconds"]["sum"])
    for bucket in snapshot["end_to_end_seconds"]["buckets"]:
        assert samples["order_end_to_end_seconds_bucket", (("le", bucket["le"]),)] == bucket["count"]


def test_every_kind_of_transition_keeps_metrics_exact(db, settings):
    settings.ORDER_MAX_ATTEMPTS = 2
    settings.ORDER_RETRY_BACKOFF_SECONDS = 0
    settings.ORDER_LEASE_SECONDS = 60
    orders = [order_create(user_id="u", item_ids=[1], total_amount=Decimal(n))[0] for n in range(6)]
    released, retried_then_done, failed_then_retried, cancelled, expired, _pending = orders

    orders_release(claims=[claim_one(released.pk)])
    order_fail_attempt(claim=claim_one(retried_then_done.pk), reason="declined")
    orders_complete(claims=[claim_one(retried_then_done.pk)])
    for _ in range(2):
        order_fail_attempt(claim=claim_one(failed_then_retried.pk), reason="declined")
    order_retry(order_id=failed_then_retried.pk)
    order_cancel(order_id=cancelled.pk)
    claim_one(expired.pk)
    Order.objects.filter(pk=expired.pk).update(started_at=timezone.now() - timedelta(minutes=5))
    orders_expire_leases()

    snapshot = assert_metrics_match_orders()
    # retries: one before the completion, one automatic and one by the operator, one after the expired lease
    assert snapshot["totals"] == {"created": 6, "completed": 1, "failed": 1, "cancelled": 1, "retried": 4}
    assert metrics_rebuild() == 0


def test_rebuild_drops_expired_minutes_without_calling_them_wrong(db):
    from metrics.models import CompletedMinute

    CompletedMinute.objects.create(minute=timezone.now() - timedelta(hours=3), shard=0, count=5)

    assert metrics_rebuild() == 0
    assert not CompletedMinute.objects.exists()


def test_a_metrics_batch_writes_every_change_inside_it_once_per_shard_at_its_end(db, settings):
    settings.ORDER_MAX_ATTEMPTS = 1
    orders = [order_create(user_id="u", item_ids=[1], total_amount=Decimal(n))[0] for n in range(4)]
    claims = orders_claim(order_ids=[order.pk for order in orders[:3]])
    before_the_end = counter_rows()

    with CaptureQueriesContext(connection) as queries, transaction.atomic(), metrics_batch():
        orders_complete(claims=claims[:2])
        order_fail_attempt(claim=claims[2], reason="declined")
        orders_claim(order_ids=[orders[3].pk])
        assert counter_rows() == before_the_end  # nothing written until the batch ends

    insert = f"INSERT INTO {connection.ops.quote_name(MetricCounter._meta.db_table)}"
    counter_writes = [query for query in queries if query["sql"].startswith(insert)]
    shards = {shard_of(order.pk) for order in orders}
    assert len(counter_writes) == len(shards)
    snapshot = assert_metrics_match_orders()
    assert snapshot["orders_by_status"] == {"PENDING": 0, "PROCESSING": 1, "COMPLETED": 2, "FAILED": 1, "CANCELLED": 0}


def test_a_metrics_batch_that_raises_writes_nothing(db):
    order, _ = order_create(user_id="u", item_ids=[1], total_amount=Decimal(1))
    rows = counter_rows()

    with transaction.atomic(), contextlib.suppress(RuntimeError), metrics_batch():
        metrics_record_transitions(order_ids=[order.pk], from_status="PENDING", to_status="CANCELLED")
        raise RuntimeError("the caller gives up, and goes on with its transaction")

    assert counter_rows() == rows
