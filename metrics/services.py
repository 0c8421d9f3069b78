"""Writes to metric rows: called by orders.services inside the transaction of the change they count."""

import threading
from bisect import bisect_left
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from metrics.models import HISTOGRAMS, CompletedMinute, Counter
from orders.models import Order

# How long per-minute completions are kept; the dashboard shows the last 30 minutes.
RETENTION = timedelta(hours=1)


@dataclass(frozen=True)
class Completion:
    """The timestamps of an order that just completed, from which its latencies are observed."""

    created_at: datetime
    started_at: datetime
    completed_at: datetime


def status_counter(status: str) -> str:
    return f"status.{status}"


def metrics_record_transitions(
    *,
    order_ids: list[UUID],
    from_status: str | None,
    to_status: str,
    retried: bool = False,
    completions: list[Completion] | None = None,
) -> None:
    """Count the same status change of several orders (from_status None: new orders; completions: one per order).

    One upsert per shard, now, or at the end of the metrics_batch() this runs in; retried marks failed attempts that
    will run again.
    """
    changes = getattr(_batch, "changes", None) or _Changes()
    for index, order_id in enumerate(order_ids):
        shard = shard_of(order_id)
        deltas = changes.deltas[shard]
        deltas[status_counter(to_status)] += 1
        if from_status is not None:
            deltas[status_counter(from_status)] -= 1
        if retried:
            deltas["retries_total"] += 1
        if to_status == Order.Status.FAILED:
            deltas["failed_total"] += 1
        if completions is not None:
            maxima = changes.maxima[shard]
            for name, micros, bucket in observations(completions[index]):
                deltas[f"{name}.sum_us"] += micros
                deltas[f"{name}.bucket.{bucket}"] += 1
                maxima[f"{name}.max_us"] = max(maxima[f"{name}.max_us"], micros)
            changes.minutes[shard][minute_of(completions[index].completed_at)] += 1
    if changes is not getattr(_batch, "changes", None):
        changes.write()


@contextmanager
def metrics_batch():
    """Status changes made inside are counted together when it ends, still in the caller's transaction.

    One upsert per shard for all of them, instead of one per kind of change: fewer statements, and every counter row
    locked in one order (shards, then names), so two such transactions can't deadlock on PostgreSQL.
    """
    if getattr(_batch, "changes", None) is not None:
        yield  # the outer batch writes
        return
    _batch.changes = changes = _Changes()
    try:
        yield
    finally:
        _batch.changes = None
    changes.write()  # only if the block did not raise


_batch = threading.local()


class _Changes:
    """Counter changes not written yet: per shard, deltas to add, maxima to raise and completions per minute."""

    def __init__(self):
        self.deltas: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.maxima: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.minutes: dict[int, dict[datetime, int]] = defaultdict(lambda: defaultdict(int))

    def write(self) -> None:
        # Shards in order, counters before minutes (the order metrics_rebuild locks the tables in): no deadlocks.
        for shard, deltas in sorted(self.deltas.items()):
            changed = {name: delta for name, delta in deltas.items() if delta}
            if changed or self.maxima[shard]:
                _apply(shard, changed, self.maxima[shard])
        for shard, minutes in sorted(self.minutes.items()):
            for minute, count in sorted(minutes.items()):
                _count_completed_minute(shard, minute, count)
        if self.minutes:
            _prune_minutes(max(minute for minutes in self.minutes.values() for minute in minutes))


def metrics_rebuild() -> int:
    """Recompute every metric row from the orders table; returns how many rows it had to change (0 when exact)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Writers wait until the rebuild commits, then add their change on top of it: nothing counted twice.
            with connection.cursor() as cursor:
                cursor.execute(
                    f"LOCK TABLE {Counter._meta.db_table}, {CompletedMinute._meta.db_table} IN EXCLUSIVE MODE"
                )
        counters, minutes = _recount()
        CompletedMinute.objects.filter(minute__lt=retention_start(timezone.now())).delete()  # expired, not wrong
        changed = _replace(Counter, ("name", "shard"), "value", counters)
        changed += _replace(CompletedMinute, ("minute", "shard"), "count", minutes)
    return changed


def latencies(completion: Completion) -> dict[str, timedelta]:
    """The three latencies a completed order contributes to its histograms."""
    return {
        "processing": completion.completed_at - completion.started_at,
        "queue_wait": completion.started_at - completion.created_at,
        "end_to_end": completion.completed_at - completion.created_at,
    }


def observations(completion: Completion) -> list[tuple[str, int, int]]:
    """(histogram, whole microseconds, bucket) for each latency a completed order contributes.

    Durations are kept as whole microseconds, so sums stay exact (the timestamps have microsecond precision). The
    bucket is the first whose upper bound the duration does not exceed, or the +Inf bucket after them.
    """
    return [
        (name, micros := duration // _MICROSECOND, bisect_left(_BOUNDS_US[name], micros))
        for name, duration in latencies(completion).items()
    ]


_MICROSECOND = timedelta(microseconds=1)
_BOUNDS_US = {name: [round(bound * 1_000_000) for bound in bounds] for name, bounds in HISTOGRAMS.items()}


def shard_of(order_id: UUID) -> int:
    """Every change of one order lands on the same shard, so a rebuild can recompute each shard exactly."""
    return order_id.int % settings.METRICS_SHARDS


def _apply(shard: int, deltas: dict[str, int], maxima: dict[str, int]) -> None:
    """Add deltas to counters and raise maxima, creating the rows that are missing, in one statement.

    Plain SQL: this runs in every status change, and the ORM's expressions cost more than the write itself. Every
    writer takes the rows in name order, so two transactions on PostgreSQL can't deadlock over them.
    """
    table = connection.ops.quote_name(Counter._meta.db_table)
    rows = sorted([*deltas.items(), *maxima.items()])
    added = f"{table}.value + excluded.value"
    if maxima:
        greatest = "MAX" if connection.vendor == "sqlite" else "GREATEST"
        raised = f"{greatest}({table}.value, excluded.value)"
        added = f"CASE WHEN {table}.name IN ({', '.join(['%s'] * len(maxima))}) THEN {raised} ELSE {added} END"
    sql = (
        f"INSERT INTO {table} (name, shard, value) VALUES {', '.join(['(%s, %s, %s)'] * len(rows))} "
        f"ON CONFLICT (name, shard) DO UPDATE SET value = {added}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*(part for name, value in rows for part in (name, shard, value)), *sorted(maxima)])


def _count_completed_minute(shard: int, minute: datetime, count: int) -> None:
    """Add completions to their minute."""
    table, quote = CompletedMinute._meta.db_table, connection.ops.quote_name
    column = quote("count")
    sql = (
        f"INSERT INTO {quote(table)} (minute, shard, {column}) VALUES (%s, %s, %s) "
        f"ON CONFLICT (minute, shard) DO UPDATE SET {column} = {quote(table)}.{column} + excluded.{column}"
    )
    stored_minute = CompletedMinute._meta.get_field("minute").get_db_prep_value(minute, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [stored_minute, shard, count])


_pruned_before: datetime | None = None  # the last retention start this process pruned up to


def _prune_minutes(latest: datetime) -> None:
    """Once a minute, each process deletes the minutes past RETENTION; after the upserts, as it locks other rows."""
    global _pruned_before
    if _pruned_before != (oldest := retention_start(latest)):
        CompletedMinute.objects.filter(minute__lt=oldest).delete()
        _pruned_before = oldest


def _recount() -> tuple[dict, dict]:
    """Every counter and per-minute row, as the incremental updates would have left them, from the orders table."""
    counters: dict[tuple[str, int], int] = defaultdict(int)
    minutes: dict[tuple[datetime, int], int] = defaultdict(int)
    recent = retention_start(timezone.now())
    fields = ("order_id", "status", "attempts", "times_failed", "created_at", "started_at", "completed_at")
    for order_id, status, attempts, times_failed, created_at, started_at, completed_at in (
        Order.objects.order_by().values_list(*fields).iterator(chunk_size=5000)
    ):
        shard = shard_of(order_id)
        counters[status_counter(status), shard] += 1
        counters["failed_total", shard] += times_failed
        # Every attempt that is not running now and did not end the order was retried.
        final_attempt = status in (Order.Status.PROCESSING, Order.Status.COMPLETED, Order.Status.FAILED)
        counters["retries_total", shard] += attempts - final_attempt
        if status == Order.Status.COMPLETED:
            for name, micros, bucket in observations(Completion(created_at, started_at, completed_at)):
                counters[f"{name}.sum_us", shard] += micros
                counters[f"{name}.bucket.{bucket}", shard] += 1
                counters[f"{name}.max_us", shard] = max(counters[f"{name}.max_us", shard], micros)
            if completed_at >= recent:
                minutes[minute_of(completed_at), shard] += 1
    return counters, minutes


def _replace(model, key_fields: tuple[str, str], value_field: str, wanted: dict) -> int:
    """Make the table hold exactly the wanted values: existing rows not wanted become 0 (or go, for minutes)."""
    changed = 0
    for row in model.objects.select_for_update():
        key = tuple(getattr(row, field) for field in key_fields)
        value = wanted.pop(key, 0)
        if value == 0 and model is CompletedMinute:
            row.delete()
            changed += 1
        elif getattr(row, value_field) != value:
            model.objects.filter(pk=row.pk).update(**{value_field: value})
            changed += 1
    model.objects.bulk_create(
        [
            model(**dict(zip(key_fields, key, strict=True)), **{value_field: value})
            for key, value in wanted.items()
            if value
        ]
    )
    return changed + sum(1 for value in wanted.values() if value)


def minute_of(moment: datetime) -> datetime:
    """The start of the minute a moment falls in."""
    return moment.replace(second=0, microsecond=0)


def retention_start(now: datetime) -> datetime:
    """The oldest minute still kept."""
    return minute_of(now - RETENTION)
