"""Reads of the metric rows; their cost does not depend on how many orders there are."""

import os
import time
from datetime import datetime, timedelta

from django.db.models import Max, Sum
from django.utils import timezone

from metrics.apps import PROCESS_STARTED
from metrics.models import HISTOGRAMS, CompletedMinute, Counter
from metrics.services import minute_of, status_counter
from orders.models import Order
from orders.queueing import get_backend

CHART_MINUTES = 30


def metrics_snapshot() -> dict:
    """Everything /api/metrics/ and /metrics show, in three indexed queries."""
    now = timezone.now()
    counters = counter_values()
    by_status = {status: counters.get(status_counter(status), 0) for status in Order.Status.values}
    completed, failed = by_status[Order.Status.COMPLETED], by_status[Order.Status.FAILED]
    oldest_pending = (
        Order.objects.filter(status=Order.Status.PENDING).order_by("created_at").values_list("created_at", flat=True)
    ).first()
    per_minute = completed_per_minute(now)
    return {
        "total_orders": sum(by_status.values()),
        "orders_by_status": by_status,
        "totals": {
            "created": sum(by_status.values()),
            "completed": completed,
            "failed": counters.get("failed_total", 0),
            "cancelled": by_status[Order.Status.CANCELLED],
            "retried": counters.get("retries_total", 0),
        },
        "queue_depth": by_status[Order.Status.PENDING],
        "in_flight": by_status[Order.Status.PROCESSING],
        "oldest_pending_age_seconds": (now - oldest_pending).total_seconds() if oldest_pending else None,
        "processing_time_seconds": histogram_summary("processing", counters),
        "queue_wait_seconds": histogram_summary("queue_wait", counters),
        "end_to_end_seconds": histogram_summary("end_to_end", counters),
        "throughput": {
            "last_1m": _rate(per_minute, now, 1),
            "last_5m": _rate(per_minute, now, 5),
            "per_minute": [{"minute": minute, "completed": count} for minute, count in per_minute],
        },
        "failure_rate": failed / (completed + failed) if completed + failed else 0.0,
        "retries_total": counters.get("retries_total", 0),
        "worker": {"pid": os.getpid(), **get_backend().stats()},
        "uptime_seconds": round(time.monotonic() - PROCESS_STARTED, 3),
        "generated_at": now,
    }


def counter_values() -> dict[str, int]:
    """Every counter summed over its shards (maxima: the largest shard); one query over a few hundred rows."""
    rows = Counter.objects.values("name").annotate(total=Sum("value"), top=Max("value"))
    return {row["name"]: row["top"] if row["name"].endswith(".max_us") else row["total"] for row in rows}


def histogram_buckets(name: str, counters: dict[str, int]) -> list[int]:
    """Observations per bucket (not cumulative), the +Inf bucket last."""
    return [counters.get(f"{name}.bucket.{index}", 0) for index in range(len(HISTOGRAMS[name]) + 1)]


def histogram_summary(name: str, counters: dict[str, int]) -> dict:
    """{count, sum, avg, p50, p95, p99, max, buckets} in seconds; percentiles are interpolated within their bucket.

    buckets are cumulative, as in Prometheus: {"le": "0.5", "count": observations <= 0.5 s}, "+Inf" last.
    """
    buckets = histogram_buckets(name, counters)
    count, total = sum(buckets), counters.get(f"{name}.sum_us", 0) / 1e6
    largest = counters.get(f"{name}.max_us", 0) / 1e6
    summary = {"count": count, "sum": total, "avg": total / count if count else None}
    for label, quantile in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        summary[label] = _percentile(HISTOGRAMS[name], buckets, quantile, largest) if count else None
    summary["max"] = largest if count else None
    bounds = [*(str(float(bound)) for bound in HISTOGRAMS[name]), "+Inf"]
    summary["buckets"] = [{"le": le, "count": sum(buckets[: i + 1])} for i, le in enumerate(bounds)]
    return summary


def completed_per_minute(now: datetime) -> list[tuple[datetime, int]]:
    """Completions in each of the last CHART_MINUTES minutes, oldest first, the current minute last."""
    current = minute_of(now)
    first = current - timedelta(minutes=CHART_MINUTES - 1)
    rows = CompletedMinute.objects.filter(minute__gte=first).values("minute").annotate(total=Sum("count"))
    counts = {row["minute"]: row["total"] for row in rows}
    minutes = [first + timedelta(minutes=n) for n in range(CHART_MINUTES)]
    return [(minute, counts.get(minute, 0)) for minute in minutes]


def _rate(per_minute: list[tuple[datetime, int]], now: datetime, minutes: int) -> float:
    """Completions per minute over the last whole minutes plus the current, partial one."""
    elapsed = minutes + (now - per_minute[-1][0]).total_seconds() / 60
    return round(sum(count for _, count in per_minute[-(minutes + 1) :]) / elapsed, 3)


def _percentile(bounds: tuple, buckets: list[int], quantile: float, largest: float) -> float:
    """Linear interpolation inside the bucket holding the quantile, as Prometheus' histogram_quantile does."""
    rank, seen, lower = quantile * sum(buckets), 0, 0.0
    for upper, count in zip([*bounds, largest], buckets, strict=True):
        if count and seen + count >= rank:
            upper = min(upper, largest)
            return round(min(lower + (upper - lower) * (rank - seen) / count, largest), 6)
        seen += count
        lower = upper
    return largest
