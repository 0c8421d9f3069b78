"""Reads of the metric rows; their cost does not depend on how many orders there are."""

from datetime import datetime, timedelta

from django.db.models import Max, Sum
from django.utils import timezone

from metrics.histograms import DELIVERY_LATENCY, HISTOGRAMS, histogram_summary
from metrics.models import CompletedMinute, Counter
from metrics.process import process_stats
from metrics.services import DELIVERY_ATTEMPTS, delivery_status_counter, minute_of, status_counter
from orders.models import Order
from webhooks.models import Delivery

CHART_MINUTES = 30


def metrics_snapshot() -> dict:
    """Everything /api/metrics/ and /metrics show, in three indexed queries.

    All but "process" are numbers of the whole database; "process" is the process that answers.
    """
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
        **{histogram.field: histogram_summary(name, counters) for name, histogram in HISTOGRAMS.items()},
        "throughput": {
            "last_1m": _rate(per_minute, now, 1),
            "last_5m": _rate(per_minute, now, 5),
            "per_minute": [{"minute": minute, "completed": count} for minute, count in per_minute],
        },
        "failure_rate": failed / (completed + failed) if completed + failed else 0.0,
        "retries_total": counters.get("retries_total", 0),
        "webhooks": {
            "deliveries": {
                status.lower(): counters.get(delivery_status_counter(status), 0) for status in Delivery.Status.values
            },
            "attempts": counters.get(DELIVERY_ATTEMPTS, 0),
            "latency": histogram_summary(DELIVERY_LATENCY, counters),
        },
        "process": process_stats(),
        "generated_at": now,
    }


def counter_values() -> dict[str, int]:
    """Every counter summed over its shards (maxima: the largest shard); one query over a few hundred rows."""
    rows = Counter.objects.values("name").annotate(total=Sum("value"), top=Max("value"))
    return {row["name"]: row["top"] if row["name"].endswith(".max_us") else row["total"] for row in rows}


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
