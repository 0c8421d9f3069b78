"""Writes to metric rows: called by orders.services and webhooks.services inside the transaction of the change they
count."""

import threading
from collections import defaultdict
from contextlib import contextmanager
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import NotSupportedError, connection, transaction
from django.utils import timezone

from metrics.histograms import DELIVERY_LATENCY, Completion, observation, observations
from metrics.models import CompletedMinute, Counter
from orders.models import Order
from webhooks.models import Delivery

# How long per-minute completions are kept; the dashboard shows the last 30 minutes.
RETENTION = timedelta(hours=1)


# Attempts recorded on the deliveries there are now: a redelivery starts its count again, a deleted endpoint takes its
# deliveries' with it, as the deliveries table does.
DELIVERY_ATTEMPTS = "delivery_attempts"


def status_counter(status: str) -> str:
    return f"status.{status}"


def delivery_status_counter(status: str) -> str:
    return f"deliveries.{status}"


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
    with _counting() as changes:
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
                for seen in observations(completions[index]):
                    changes.observe(shard, seen)
                changes.minutes[shard][minute_of(completions[index].completed_at)] += 1


def metrics_record_deliveries(
    *,
    order_ids: list[UUID],
    from_status: str | None = None,
    to_status: str | None = None,
    attempts: list[int] | None = None,
    latencies: list[timedelta] | None = None,
) -> None:
    """Count a change of several webhook deliveries, one per order id (a delivery counts on its order's shard).

    from_status None: new deliveries; to_status None: no status change. attempts: attempts added to each (negative
    when a redelivery forgets them); latencies: from the event to the 2xx, of deliveries that just succeeded.
    """
    with _counting() as changes:
        for index, order_id in enumerate(order_ids):
            shard = shard_of(order_id)
            deltas = changes.deltas[shard]
            if to_status is not None:
                deltas[delivery_status_counter(to_status)] += 1
                if from_status is not None:
                    deltas[delivery_status_counter(from_status)] -= 1
            if attempts is not None:
                deltas[DELIVERY_ATTEMPTS] += attempts[index]
            if latencies is not None:
                changes.observe(shard, observation(DELIVERY_LATENCY, latencies[index]))


def metrics_record_deliveries_removed(*, deliveries: list[Delivery]) -> None:
    """Uncount deliveries deleted in the caller's transaction (with their endpoint): statuses, attempts, latencies.

    A maximum can't be lowered by adding: where a deleted delivery may have held its shard's, the shard's maximum is
    recomputed from the deliveries left, once write() holds its row, so a writer raising it meanwhile waits and raises
    it after.
    """
    changes = _Changes()
    removed_max: dict[int, int] = {}
    for delivery in deliveries:
        shard = shard_of(delivery.order_id)
        deltas = changes.deltas[shard]
        deltas[delivery_status_counter(delivery.status)] -= 1
        deltas[DELIVERY_ATTEMPTS] -= delivery.attempts
        if delivery.status == Delivery.Status.SUCCEEDED:
            name, micros, bucket = observation(DELIVERY_LATENCY, delivery.delivered_at - delivery.created_at)
            deltas[f"{name}.sum_us"] -= micros
            deltas[f"{name}.bucket.{bucket}"] -= 1
            changes.maxima[shard][f"{name}.max_us"] = 0  # locks the row without raising it
            removed_max[shard] = max(removed_max.get(shard, 0), micros)
    changes.write()
    max_name = f"{DELIVERY_LATENCY}.max_us"
    stored = Counter.objects.filter(name=max_name, shard__in=removed_max).values_list("shard", "value")
    stale = {shard for shard, value in stored if removed_max[shard] >= value}
    if not stale:
        return
    left: dict[int, int] = dict.fromkeys(stale, 0)
    succeeded = Delivery.objects.filter(status=Delivery.Status.SUCCEEDED).order_by()
    fields = ("order_id", "created_at", "delivered_at")
    for order_id, created_at, delivered_at in succeeded.values_list(*fields).iterator(chunk_size=5000):
        if (shard := shard_of(order_id)) in left:
            left[shard] = max(left[shard], observation(DELIVERY_LATENCY, delivered_at - created_at)[1])
    for shard, value in left.items():
        Counter.objects.filter(name=max_name, shard=shard).update(value=value)


@contextmanager
def _counting():
    """The changes to add to: those of the metrics_batch() this runs in, or new ones written when the block ends."""
    if (batched := getattr(_batch, "changes", None)) is not None:
        yield batched
        return
    changes = _Changes()
    yield changes
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

    def observe(self, shard: int, seen: tuple[str, int, int]) -> None:
        """Add one latency (histogram, microseconds, bucket) to its histogram's sum, bucket and maximum."""
        name, micros, bucket = seen
        self.deltas[shard][f"{name}.sum_us"] += micros
        self.deltas[shard][f"{name}.bucket.{bucket}"] += 1
        self.maxima[shard][f"{name}.max_us"] = max(self.maxima[shard][f"{name}.max_us"], micros)

    def write(self) -> None:
        # Shards in order, counters before minutes (the order metrics_rebuild locks the tables in): no deadlocks.
        for shard, deltas in sorted(self.deltas.items()):
            changed = {name: delta for name, delta in deltas.items() if delta}
            maxima = self.maxima[shard]
            if changed or maxima:
                rows = [(name, shard, value) for name, value in sorted([*changed.items(), *maxima.items()])]
                _add(Counter, key=("name", "shard"), column="value", rows=rows, highest=sorted(maxima))
        prepare = CompletedMinute._meta.get_field("minute").get_db_prep_value
        for shard, minutes in sorted(self.minutes.items()):
            rows = [(prepare(minute, connection), shard, count) for minute, count in sorted(minutes.items())]
            _add(CompletedMinute, key=("minute", "shard"), column="count", rows=rows)
        if self.minutes:
            _prune_minutes(max(minute for minutes in self.minutes.values() for minute in minutes))


def metrics_rebuild() -> int:
    """Recompute every metric row from the orders and deliveries tables; returns how many rows it had to change (0 when
    exact)."""
    if connection.vendor == "mysql":
        return _rebuild_by_adding_the_drift()
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


def _rebuild_by_adding_the_drift() -> int:
    """metrics_rebuild on MySQL, where nothing can hold writers off without deadlocking them: LOCK TABLES takes the
    metric tables before the orders table, a writer the other way round.

    Instead, one snapshot of the orders, the deliveries and the metric rows (REPEATABLE READ reads all of them as of
    one moment, and every writer changes an order or a delivery and its counts in one transaction) shows how far each
    row has drifted. The drift is then added with the writers' own upserts, on top of whatever they added meanwhile. A
    named lock keeps a second rebuild from adding the same drift again.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT GET_LOCK('metrics_rebuild', 600)")
        if cursor.fetchone()[0] != 1:
            raise TimeoutError("another metrics_rebuild held its lock for 10 minutes")
        try:
            if not connection.in_atomic_block:  # inside a caller's transaction, it reads as that one does
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")  # the next transaction only
            with transaction.atomic():
                counters, minutes = _recount()
                stored = {
                    (name, shard): value for name, shard, value in Counter.objects.values_list("name", "shard", "value")
                }
                stored_minutes = {
                    (minute, shard): count for minute, shard, count in CompletedMinute.objects.values_list()
                }
            return _add_drift(counters, stored, minutes, stored_minutes)
        finally:
            cursor.execute("SELECT RELEASE_LOCK('metrics_rebuild')")


def _add_drift(counters: dict, stored: dict, minutes: dict, stored_minutes: dict) -> int:
    """Add to each metric row the difference between its recount and its stored value; returns how many differed.

    A maximum can't be lowered by adding (only deleted orders lower one): it is set to its recount only if no writer
    has raised it since the snapshot. A completion whose time lies between the two values is then left out, until the
    next rebuild.
    """
    changes = _Changes()
    lowered = []
    for name, shard in counters.keys() | stored.keys():
        wanted, had = counters.get((name, shard), 0), stored.get((name, shard), 0)
        if wanted == had:
            continue
        if not name.endswith(".max_us"):
            changes.deltas[shard][name] += wanted - had
        elif wanted > had:
            changes.deltas[shard]  # write() visits the shards that have deltas
            changes.maxima[shard][name] = wanted
        else:
            lowered.append((name, shard, had, wanted))
    recent = retention_start(timezone.now())
    for minute, shard in minutes.keys() | stored_minutes.keys():
        drift = minutes.get((minute, shard), 0) - stored_minutes.get((minute, shard), 0)
        if drift and minute >= recent:
            changes.minutes[shard][minute] += drift
    with transaction.atomic():
        changes.write()
        CompletedMinute.objects.filter(minute__lt=recent).delete()  # expired, not wrong
    for name, shard, had, wanted in lowered:  # each alone: a lock taken out of write()'s order could deadlock
        Counter.objects.filter(name=name, shard=shard, value=had).update(value=wanted)
    rows = [*changes.deltas.values(), *changes.maxima.values(), *changes.minutes.values()]
    return sum(map(len, rows)) + len(lowered)


def shard_of(order_id: UUID) -> int:
    """Every change of one order lands on the same shard, so a rebuild can recompute each shard exactly."""
    return order_id.int % settings.METRICS_SHARDS


def _add(model, *, key: tuple[str, str], column: str, rows: list[tuple], highest: list[str] = ()) -> None:
    """Add each row's value to the stored row with the same key, creating the rows that are missing, in one statement.

    rows are (key part, key part, value), in the order to lock them. Where the first key part is one of highest, the
    stored value is raised to the new one instead of added to (the .max_us counters). Plain SQL: this runs in every
    status change, the ORM's expressions cost more than the write itself, and bulk_create(update_conflicts=True) can
    only overwrite a value, not add to it.
    """
    try:
        on_conflict, new_value, greatest = _UPSERT_SQL[connection.vendor]
    except KeyError:
        raise NotSupportedError(f"the metrics can't count on {connection.vendor} yet") from None
    quote = connection.ops.quote_name
    table, value = quote(model._meta.db_table), quote(column)
    stored, new = f"{table}.{value}", new_value.format(value)
    update = f"{stored} + {new}"
    if highest:
        names = ", ".join(["%s"] * len(highest))
        update = f"CASE WHEN {table}.{quote(key[0])} IN ({names}) THEN {greatest}({stored}, {new}) ELSE {update} END"
    sql = (
        f"INSERT INTO {table} ({', '.join(quote(name) for name in (*key, column))}) "
        f"VALUES {', '.join(['(%s, %s, %s)'] * len(rows))} "
        f"{on_conflict.format(', '.join(quote(name) for name in key))} {value} = {update}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*(part for row in rows for part in row), *highest])


# Per database: how an INSERT turns into an update of the row with the same key, how the update names the value the
# INSERT brought, and the larger of two values. MySQL's ON DUPLICATE KEY names no key (the primary key is the tables'
# only one), and its VALUES() is the form both MySQL 8 and MariaDB accept.
_UPSERT_SQL = {
    "mysql": ("ON DUPLICATE KEY UPDATE", "VALUES({})", "GREATEST"),
    "postgresql": ("ON CONFLICT ({}) DO UPDATE SET", "excluded.{}", "GREATEST"),
    "sqlite": ("ON CONFLICT ({}) DO UPDATE SET", "excluded.{}", "MAX"),
}


_pruned_before: datetime | None = None  # the last retention start this process pruned up to


def _prune_minutes(latest: datetime) -> None:
    """Once a minute, each process deletes the minutes past RETENTION; after the upserts, as it locks other rows."""
    global _pruned_before
    if _pruned_before != (oldest := retention_start(latest)):
        CompletedMinute.objects.filter(minute__lt=oldest).delete()
        _pruned_before = oldest


def _recount() -> tuple[dict, dict]:
    """Every counter and per-minute row, as the incremental updates would have left them, from the orders and
    deliveries tables."""
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
            for seen in observations(Completion(created_at, started_at, completed_at)):
                _recount_observation(counters, shard, seen)
            if completed_at >= recent:
                minutes[minute_of(completed_at), shard] += 1
    fields = ("order_id", "status", "attempts", "created_at", "delivered_at")
    for order_id, status, attempts, created_at, delivered_at in (
        Delivery.objects.order_by().values_list(*fields).iterator(chunk_size=5000)
    ):
        shard = shard_of(order_id)
        counters[delivery_status_counter(status), shard] += 1
        counters[DELIVERY_ATTEMPTS, shard] += attempts
        if status == Delivery.Status.SUCCEEDED:
            _recount_observation(counters, shard, observation(DELIVERY_LATENCY, delivered_at - created_at))
    return counters, minutes


def _recount_observation(counters: dict[tuple[str, int], int], shard: int, seen: tuple[str, int, int]) -> None:
    """Add one latency to the recounted sum, bucket and maximum of its histogram, as _Changes.observe does."""
    name, micros, bucket = seen
    counters[f"{name}.sum_us", shard] += micros
    counters[f"{name}.bucket.{bucket}", shard] += 1
    counters[f"{name}.max_us", shard] = max(counters[f"{name}.max_us", shard], micros)


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
