"""Latency histograms: their buckets, which bucket a latency falls in, and the summary read back from the counters.

Each histogram is kept in counter rows: "<name>.bucket.<i>" (observations per bucket), "<name>.sum_us" and
"<name>.max_us", in whole microseconds so sums stay exact (the timestamps have microsecond precision).
"""

from bisect import bisect_left
from dataclasses import dataclass
from datetime import datetime, timedelta

# Bucket upper bounds in seconds; the last bucket (+Inf) is implicit. Changing them needs metrics_rebuild.
PROCESSING_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 7.5, 10, 30, 60)
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 90, 120, 180, 300, 600, 1800, 3600)


@dataclass(frozen=True)
class Histogram:
    """One latency histogram: where it shows and its bucket bounds."""

    field: str  # its key in /api/metrics/; Prometheus calls it order_<name>_seconds
    label: str  # its row on the dashboard
    bounds: tuple[float, ...]


HISTOGRAMS = {
    "processing": Histogram("processing_time_seconds", "Processing", PROCESSING_BUCKETS),
    "queue_wait": Histogram("queue_wait_seconds", "Queue wait", WAIT_BUCKETS),
    "end_to_end": Histogram("end_to_end_seconds", "End to end", WAIT_BUCKETS),
}
# A webhook delivery's latency: from the event to its 2xx, retries and backoff included. Its key in the "webhooks"
# object of /api/metrics/; Prometheus calls it webhook_delivery_latency_seconds.
DELIVERY_LATENCY = "delivery_latency"
WEBHOOK_HISTOGRAMS = {DELIVERY_LATENCY: Histogram("latency", "Delivery latency", WAIT_BUCKETS)}
_ALL_HISTOGRAMS = {**HISTOGRAMS, **WEBHOOK_HISTOGRAMS}


@dataclass(frozen=True)
class Completion:
    """The timestamps of an order that just completed, from which its latencies are observed."""

    created_at: datetime
    started_at: datetime
    completed_at: datetime


def latencies(completion: Completion) -> dict[str, timedelta]:
    """The latency a completed order contributes to each histogram."""
    return {
        "processing": completion.completed_at - completion.started_at,
        "queue_wait": completion.started_at - completion.created_at,
        "end_to_end": completion.completed_at - completion.created_at,
    }


def observations(completion: Completion) -> list[tuple[str, int, int]]:
    """(histogram, whole microseconds, bucket) for each latency a completed order contributes."""
    return [observation(name, duration) for name, duration in latencies(completion).items()]


def observation(name: str, duration: timedelta) -> tuple[str, int, int]:
    """(histogram, whole microseconds, bucket) of one latency.

    The bucket is the first whose upper bound the duration does not exceed, or the +Inf bucket after them.
    """
    micros = duration // _MICROSECOND
    return name, micros, bisect_left(_BOUNDS_US[name], micros)


_MICROSECOND = timedelta(microseconds=1)
_BOUNDS_US = {
    name: [round(bound * 1_000_000) for bound in histogram.bounds] for name, histogram in _ALL_HISTOGRAMS.items()
}


def histogram_buckets(name: str, counters: dict[str, int]) -> list[int]:
    """Observations per bucket (not cumulative), the +Inf bucket last."""
    return [counters.get(f"{name}.bucket.{index}", 0) for index in range(len(_ALL_HISTOGRAMS[name].bounds) + 1)]


def histogram_summary(name: str, counters: dict[str, int]) -> dict:
    """{count, sum, avg, p50, p95, p99, max, buckets} in seconds; percentiles are interpolated within their bucket.

    buckets are cumulative, as in Prometheus: {"le": "0.5", "count": observations <= 0.5 s}, "+Inf" last.
    """
    bounds, buckets = _ALL_HISTOGRAMS[name].bounds, histogram_buckets(name, counters)
    count, total = sum(buckets), counters.get(f"{name}.sum_us", 0) / 1e6
    largest = counters.get(f"{name}.max_us", 0) / 1e6
    summary = {"count": count, "sum": total, "avg": total / count if count else None}
    for label, quantile in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        summary[label] = percentile(bounds, buckets, quantile, largest) if count else None
    summary["max"] = largest if count else None
    labels = [*(str(float(bound)) for bound in bounds), "+Inf"]
    summary["buckets"] = [{"le": le, "count": sum(buckets[: i + 1])} for i, le in enumerate(labels)]
    return summary


def percentile(bounds: tuple, buckets: list[int], quantile: float, largest: float) -> float:
    """Linear interpolation inside the bucket holding the quantile, as Prometheus' histogram_quantile does."""
    rank, seen, lower = quantile * sum(buckets), 0, 0.0
    for upper, count in zip([*bounds, largest], buckets, strict=True):
        if count and seen + count >= rank:
            upper = min(upper, largest)
            return round(min(lower + (upper - lower) * (rank - seen) / count, largest), 6)
        seen += count
        lower = upper
    return largest
