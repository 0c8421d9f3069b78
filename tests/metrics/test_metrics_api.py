"""GET /api/metrics/: every field, computed from counter rows the services keep."""

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from metrics.histograms import PROCESSING_BUCKETS, Completion, histogram_summary, observations, percentile
from metrics.models import CompletedMinute
from metrics.services import minute_of
from orders.models import Order
from orders.services import order_cancel, order_create, order_fail_attempt, orders_complete
from tests.factories import claim_one

pytestmark = pytest.mark.django_db


def create() -> Order:
    return order_create(user_id="u", item_ids=[1], total_amount=Decimal("1.00"))[0]


def test_empty_system_reports_every_field_with_zeros(api):
    body = api.get("/api/metrics/").json()

    assert body["total_orders"] == 0
    assert body["orders_by_status"] == {"PENDING": 0, "PROCESSING": 0, "COMPLETED": 0, "FAILED": 0, "CANCELLED": 0}
    assert body["totals"] == {"created": 0, "completed": 0, "failed": 0, "cancelled": 0, "retried": 0}
    assert (body["queue_depth"], body["in_flight"], body["oldest_pending_age_seconds"]) == (0, 0, None)
    for name in ("processing_time_seconds", "queue_wait_seconds", "end_to_end_seconds"):
        assert body[name]["count"] == 0
        assert body[name]["p95"] is None
    assert body["throughput"]["last_1m"] == body["throughput"]["last_5m"] == 0
    assert len(body["throughput"]["per_minute"]) == 30
    assert (body["failure_rate"], body["retries_total"]) == (0, 0)
    process = body.pop("process")
    assert process.pop("uptime_seconds") >= 0
    assert process == {"pid": os.getpid(), "concurrency": 0, "in_flight": 0}  # no worker runs in tests
    assert not {"pid", "concurrency", "uptime_seconds"} & body.keys()  # the process's numbers are only under it
    assert body["generated_at"]


def test_the_process_numbers_are_those_of_the_worker_running_here(start_worker, api):
    start_worker(ORDER_CONCURRENCY=3)

    process = api.get("/api/metrics/").json()["process"]

    assert (process["pid"], process["concurrency"], process["in_flight"]) == (os.getpid(), 3, 0)


def test_metrics_follow_each_status_change(api, settings):
    settings.ORDER_MAX_ATTEMPTS = 2
    done, retried, failed, cancelled, waiting = (create() for _ in range(5))
    orders_complete(claims=[claim_one(done.pk)])
    order_fail_attempt(claim=claim_one(retried.pk), reason="declined")
    Order.objects.filter(pk=failed.pk).update(attempts=1)  # as if its first attempt had failed already
    order_fail_attempt(claim=claim_one(failed.pk), reason="declined")
    order_cancel(order_id=cancelled.pk)

    body = api.get("/api/metrics/").json()

    assert body["orders_by_status"] == {"PENDING": 2, "PROCESSING": 0, "COMPLETED": 1, "FAILED": 1, "CANCELLED": 1}
    assert body["totals"] == {"created": 5, "completed": 1, "failed": 1, "cancelled": 1, "retried": 1}
    assert body["failure_rate"] == 0.5
    assert body["queue_depth"] == 2
    assert body["oldest_pending_age_seconds"] >= 0
    assert body["processing_time_seconds"]["count"] == body["end_to_end_seconds"]["count"] == 1
    per_minute = {datetime.fromisoformat(row["minute"]): row["completed"] for row in body["throughput"]["per_minute"]}
    done.refresh_from_db()
    assert per_minute[minute_of(done.completed_at)] == 1  # the minute it completed in, even if a new one began since
    assert waiting.status == Order.Status.PENDING


@pytest.mark.parametrize("orders", [1, 20])
def test_reading_metrics_costs_three_queries_however_many_orders(api, django_assert_num_queries, orders):
    for _ in range(orders):
        orders_complete(claims=[claim_one(create().pk)])

    with django_assert_num_queries(3):
        api.get("/api/metrics/")


def test_latencies_are_exact_sums_and_maxima(api):
    order = create()
    claim = claim_one(order.pk)
    orders_complete(claims=[claim])
    order.refresh_from_db()

    processing = api.get("/api/metrics/").json()["processing_time_seconds"]

    exact = (order.completed_at - order.started_at).total_seconds()
    assert processing["sum"] == processing["max"] == processing["avg"] == pytest.approx(exact, abs=1e-6)
    assert processing["buckets"][-1] == {"le": "+Inf", "count": 1}


def test_percentiles_interpolate_within_the_bucket():
    bounds = (1, 2, 4)
    buckets = [0, 10, 10, 0]  # ten observations in (1, 2], ten in (2, 4]

    assert percentile(bounds, buckets, 0.5, largest=3.5) == 2.0
    assert percentile(bounds, buckets, 0.25, largest=3.5) == 1.5
    assert percentile(bounds, buckets, 0.95, largest=3.5) == 3.35  # the bucket ends at the exact maximum


def test_percentile_in_the_overflow_bucket_ends_at_the_maximum():
    counters = {"processing.bucket.18": 4, "processing.sum_us": 400_000_000, "processing.max_us": 100_000_000}

    summary = histogram_summary("processing", counters)

    assert summary["p50"] == pytest.approx(80.0)  # halfway from the last bound (60 s) to the maximum (100 s)
    assert summary["max"] == 100.0


def test_throughput_is_completions_per_minute_over_recent_minutes(api):
    now = timezone.now().replace(second=0, microsecond=0)
    CompletedMinute.objects.create(minute=now - timedelta(minutes=2), shard=0, count=30)
    CompletedMinute.objects.create(minute=now - timedelta(minutes=10), shard=0, count=100)

    throughput = api.get("/api/metrics/").json()["throughput"]

    assert throughput["last_1m"] == 0
    assert 30 / 5 >= throughput["last_5m"] >= 30 / 6  # 30 over 5 whole minutes and part of the current one
    per_minute = {row["minute"]: row["completed"] for row in throughput["per_minute"]}
    assert sum(per_minute.values()) == 130


def test_a_latency_on_a_bucket_bound_falls_in_that_bucket_and_one_microsecond_more_in_the_next():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    half_a_second = PROCESSING_BUCKETS.index(0.5)

    on_bound = dict(
        (name, (micros, bucket))
        for name, micros, bucket in observations(Completion(start, start, start + timedelta(seconds=0.5)))
    )
    past_it = dict(
        (name, (micros, bucket))
        for name, micros, bucket in observations(
            Completion(start, start, start + timedelta(seconds=0.5, microseconds=1))
        )
    )

    assert on_bound["processing"] == (500_000, half_a_second)
    assert past_it["processing"] == (500_001, half_a_second + 1)
    assert on_bound["queue_wait"] == (0, 0)
