"""Writes to metric rows: called by orders.services inside the transaction of the change they count."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
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

    One UPDATE per shard; retried marks failed attempts that will run again.
    """
    by_shard: dict[int, list[int]] = defaultdict(list)
    for index, order_id in enumerate(order_ids):
        by_shard[shard_of(order_id)].append(index)
    # Shards in order, counter rows before minute rows (the order metrics_rebuild locks the tables in): no deadlocks.
    for shard, indexes in sorted(by_shard.items()):
        changed = len(indexes)
        deltas: dict[str, int] = defaultdict(int, {status_counter(to_status): changed})
        if from_status is not None:
            deltas[status_counter(from_status)] = -changed
        if retried:
            deltas["retries_total"] = changed
        if to_status == Order.Status.FAILED:
            deltas["failed_total"] = changed
        maxima: dict[str, int] = defaultdict(int)
        for index in indexes if completions is not None else ():
            for name, seconds in latencies(completions[index]).items():
                deltas[f"{name}.sum_us"] += _microseconds(seconds)
                deltas[f"{name}.bucket.{bucket_index(name, seconds)}"] += 1
                maxima[f"{name}.max_us"] = max(maxima[f"{name}.max_us"], _microseconds(seconds))
        _apply(shard, deltas, maxima)
    for shard, indexes in sorted(by_shard.items()) if completions is not None else ():
        per_minute: dict[datetime, int] = defaultdict(int)
        for index in indexes:
            per_minute[minute_of(completions[index].completed_at)] += 1
        for minute, count in sorted(per_minute.items()):
            _count_completed_minute(shard, minute, count)


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


def bucket_index(histogram: str, duration: timedelta) -> int:
    """The bucket a duration falls in: the first upper bound it does not exceed, or the +Inf bucket after them."""
    bounds = HISTOGRAMS[histogram]
    micros = _microseconds(duration)
    return next((i for i, bound in enumerate(bounds) if micros <= round(bound * 1_000_000)), len(bounds))


def shard_of(order_id: UUID) -> int:
    """Every change of one order lands on the same shard, so a rebuild can recompute each shard exactly."""
    return order_id.int % settings.METRICS_SHARDS


def _apply(shard: int, deltas: dict[str, int], maxima: dict[str, int]) -> None:
    """Add deltas and raise maxima in one UPDATE; create the shard's rows the first time they are needed.

    Plain SQL: this runs in every status change, and the ORM's CASE expression cost more than the write itself.
    """
    if not maxima and len(deltas) == 1:
        [(name, delta)] = deltas.items()
        _add_one(shard, name, delta)
        return
    names = sorted([*deltas, *maxima])
    table, greatest = Counter._meta.db_table, "MAX" if connection.vendor == "sqlite" else "GREATEST"
    cases = ["WHEN %s THEN value + %s"] * len(deltas) + [f"WHEN %s THEN {greatest}(value, %s)"] * len(maxima)
    where = f"WHERE shard = %s AND name IN ({', '.join(['%s'] * len(names))})"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT name FROM {table} {where}", [shard, *names])
        if missing := sorted(set(names) - {name for (name,) in cursor.fetchall()}):
            # Before taking any counter lock; waits for a concurrent creator of the same rows, then skips them.
            Counter.objects.bulk_create([Counter(name=name, shard=shard) for name in missing], ignore_conflicts=True)
        if connection.features.has_select_for_update:
            # Lock the rows in name order first: two transactions updating overlapping rows then can't deadlock.
            cursor.execute(f"SELECT id FROM {table} {where} ORDER BY name FOR UPDATE", [shard, *names])
        pairs = [part for pair in [*deltas.items(), *maxima.items()] for part in pair]
        cursor.execute(
            f"UPDATE {table} SET value = CASE name {' '.join(cases)} ELSE value END {where}", [*pairs, shard, *names]
        )
        if cursor.rowcount != len(names):
            raise RuntimeError(f"metric rows of shard {shard} vanished during an update")


def _add_one(shard: int, name: str, delta: int) -> None:
    """The hot single-counter case (every new order): one plain UPDATE, in SQL, as the ORM's costs more than it."""
    sql = f"UPDATE {Counter._meta.db_table} SET value = value + %s WHERE name = %s AND shard = %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [delta, name, shard])
        if cursor.rowcount == 0:
            Counter.objects.bulk_create([Counter(name=name, shard=shard)], ignore_conflicts=True)
            cursor.execute(sql, [delta, name, shard])


def _count_completed_minute(shard: int, minute: datetime, count: int) -> None:
    """Add completions to their minute; the first completion of a minute also prunes minutes past RETENTION."""
    row = CompletedMinute.objects.filter(minute=minute, shard=shard)
    if not row.update(count=F("count") + count):
        CompletedMinute.objects.bulk_create([CompletedMinute(minute=minute, shard=shard)], ignore_conflicts=True)
        row.update(count=F("count") + count)
        CompletedMinute.objects.filter(minute__lt=retention_start(minute)).delete()


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
            for name, seconds in latencies(Completion(created_at, started_at, completed_at)).items():
                counters[f"{name}.sum_us", shard] += _microseconds(seconds)
                counters[f"{name}.bucket.{bucket_index(name, seconds)}", shard] += 1
                counters[f"{name}.max_us", shard] = max(counters[f"{name}.max_us", shard], _microseconds(seconds))
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


def _microseconds(duration: timedelta) -> int:
    """Durations are kept as whole microseconds, so sums stay exact (the timestamps have microsecond precision)."""
    return duration // timedelta(microseconds=1)
