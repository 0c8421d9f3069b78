"""Every write to webhooks: endpoints, the outbox rows written with each order's change, and each delivery's attempts,
every status change one conditional UPDATE."""

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import F, Min
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from metrics.services import metrics_batch, metrics_record_deliveries, metrics_record_deliveries_removed
from orders.models import Order
from orders.serializers import UTCDateTimeField, order_output
from webhooks.addresses import check_url
from webhooks.models import ALL_EVENTS, Delivery, Endpoint
from webhooks.signing import new_secret
from webhooks.wakeups import wake_senders

# Failure reasons are stored and shown; an exception's message can be any length.
MAX_ERROR = 1000


class DeliveryNotFailed(Exception):
    """Only a FAILED delivery can be redelivered."""


class EndpointNotDisabled(Exception):
    """Only a disabled endpoint can be enabled."""


@dataclass(frozen=True)
class Attempt:
    """One claimed attempt at a delivery: what to send, where, signed with which secrets; leased_until fences it."""

    delivery_id: int
    endpoint_id: uuid.UUID
    order_id: uuid.UUID
    created_at: datetime  # when its event happened: a success's latency is counted from it
    url: str
    message_id: str
    body: str
    signing_secrets: list[str]
    number: int  # 1 for the first attempt
    leased_until: datetime


def endpoint_create(*, url: str, events: list[str], description: str = "") -> Endpoint:
    """Register an endpoint with a new secret; raises ForbiddenAddress for a URL webhooks may not go to."""
    check_url(url)
    return Endpoint.objects.create(url=url, events=events, description=description, secret=new_secret())


def endpoint_delete(*, endpoint_id: uuid.UUID) -> None:
    """Remove an endpoint and its deliveries, sent or not, and uncount them; raises Endpoint.DoesNotExist."""
    # Disabled first, in a commit of its own: no sender claims its deliveries from then on, so none is sent and
    # recorded while the deletion waits below for the transactions writing some. Recording locks a delivery, then its
    # endpoint, the other way round from that wait.
    if not Endpoint.objects.filter(pk=endpoint_id).update(disabled_at=timezone.now(), disabled_reason="Being deleted"):
        raise Endpoint.DoesNotExist(endpoint_id)
    with transaction.atomic():
        # Its deliveries' rows before its own, in deliveries_record's order; once the endpoint's row is locked
        # no delivery can be added to it, and the second read finds those added before.
        _lock_deliveries(endpoint_id)
        if not Endpoint.objects.select_for_update().filter(pk=endpoint_id).values_list("pk"):
            raise Endpoint.DoesNotExist(endpoint_id)
        deliveries = _lock_deliveries(endpoint_id)
        Delivery.objects.filter(endpoint_id=endpoint_id).delete()
        Endpoint.objects.filter(pk=endpoint_id).delete()
        # Counter rows last, as every writer locks them: the deletes above may wait on other deliveries' rows.
        metrics_record_deliveries_removed(deliveries=deliveries)


def _lock_deliveries(endpoint_id: uuid.UUID) -> list[Delivery]:
    """An endpoint's deliveries, locked, with what their metrics count; a locking read, so MySQL reads the newest."""
    deliveries = Delivery.objects.select_for_update().filter(endpoint_id=endpoint_id)
    return list(deliveries.order_by("pk").only(*_COUNTED_FIELDS))


# What metrics_record_deliveries_removed reads of each delivery it uncounts.
_COUNTED_FIELDS = ("order_id", "status", "attempts", "created_at", "delivered_at")


def endpoint_rotate_secret(*, endpoint_id: uuid.UUID, now: datetime | None = None) -> Endpoint:
    """Give an endpoint a new secret; the old one also signs for WEBHOOK_ROTATION_GRACE_SECONDS. Raises DoesNotExist."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.WEBHOOK_ROTATION_GRACE_SECONDS)
    # previous_secret first: MySQL assigns left to right, so `secret` must still be the old one when it is copied.
    rotated = Endpoint.objects.filter(pk=endpoint_id).update(
        previous_secret=F("secret"), secret=new_secret(), previous_secret_expires_at=now + grace
    )
    if not rotated:
        raise Endpoint.DoesNotExist(endpoint_id)
    return Endpoint.objects.get(pk=endpoint_id)


def endpoint_enable(*, endpoint_id: uuid.UUID) -> None:
    """Send to a disabled endpoint again: its waiting deliveries first, as soon as a sender can. Raises
    EndpointNotDisabled."""
    with transaction.atomic():
        enabled = Endpoint.objects.filter(pk=endpoint_id, disabled_at__isnull=False).update(
            disabled_at=None, disabled_reason="", failing_since=None
        )
        if not enabled:
            raise EndpointNotDisabled(endpoint_id)
        transaction.on_commit(partial(deliveries_release, endpoint_ids=[endpoint_id]), robust=True)


def webhooks_record_transitions(
    *,
    order_ids: list[uuid.UUID],
    from_status: str | None,
    to_status: str,
    now: datetime,
    orders: list[Order] | None = None,
) -> None:
    """Write a delivery for each order's event and each endpoint subscribed to it, in the caller's transaction.

    Called by orders.services with every status change (from_status None: new orders, given as orders). Costs one
    query on the endpoints table when nobody subscribes; otherwise orders not given are read as they are now, after
    the change. The senders are woken once it commits.
    """
    event_type = _event_type(from_status, to_status)
    if event_type is None:
        return
    endpoint_ids = _subscribed_endpoint_ids(event_type)
    if not endpoint_ids:
        return
    if orders is None:
        orders = list(Order.objects.filter(pk__in=order_ids).order_by("created_at", "pk"))
    timestamp = _timestamp.to_representation(now)
    events = []
    for order in orders:
        payload = {"type": event_type, "timestamp": timestamp, "data": order_output(order)}
        body = JSONRenderer().render(payload).decode()  # as the API renders an order
        events.append((order.pk, f"msg_{uuid.uuid4().hex}", body))
    # An order's first event is due at once; a later one waits for the one before it, which it may find finished
    # once this commits (deliveries_release).
    waiting = from_status is not None
    _insert_deliveries(endpoint_ids=endpoint_ids, events=events, event_type=event_type, now=now, waiting=waiting)
    metrics_record_deliveries(
        order_ids=[order_id for order_id, _, _ in events for _ in endpoint_ids], to_status=Delivery.Status.PENDING
    )
    order_ids = [order.pk for order in orders]
    if waiting:  # the release wakes the senders for what is due
        transaction.on_commit(partial(deliveries_release, endpoint_ids=endpoint_ids, order_ids=order_ids), robust=True)
    else:
        transaction.on_commit(
            partial(wake_senders, Delivery.objects.filter(endpoint_id__in=endpoint_ids, order_id__in=order_ids))
        )


_timestamp = UTCDateTimeField()


def _subscribed_endpoint_ids(event_type: str) -> list[uuid.UUID]:
    """The enabled endpoints subscribed to event_type, in key order; every enabled endpoint's row is share-locked until
    the transaction ends.

    The lock keeps the endpoints this transaction writes deliveries for: endpoint_delete locks an endpoint's row
    exclusively, so it waits for this transaction, and this one waits for a deletion under way, then leaves the deleted
    endpoint out. Without it a deletion committed meanwhile breaks the deliveries' foreign key, and with it the order's
    change. It is the lock the foreign key's own check takes, taken at the read rather than at the insert (MySQL) or
    the commit (PostgreSQL). The ORM has no shared row lock (select_for_update() would make each order's transaction
    wait for the one before), hence the clause; SQLite needs none, as its one writer is this transaction. In key
    order: every transaction that locks endpoint rows takes them in this order (deliveries_record), so none waits in a
    circle.
    """
    connection = connections[router.db_for_write(Endpoint)]
    endpoints = Endpoint.objects.enabled().order_by("pk").only("pk", "events")
    sql, params = endpoints.query.get_compiler(connection=connection).as_sql()
    locked = Endpoint.objects.raw(sql + _SHARED_ROW_LOCK.get(connection.vendor, ""), params, using=connection.alias)
    return [endpoint.pk for endpoint in locked if ALL_EVENTS in endpoint.events or event_type in endpoint.events]


# Shared row locks: on PostgreSQL only a deletion, FOR UPDATE or a change of key waits for one; on MySQL any write.
_SHARED_ROW_LOCK = {"postgresql": " FOR KEY SHARE", "mysql": " LOCK IN SHARE MODE"}


def _insert_deliveries(
    *,
    endpoint_ids: list[uuid.UUID],
    events: list[tuple[uuid.UUID, str, str]],
    event_type: str,
    now: datetime,
    waiting: bool,
) -> None:
    """Insert a PENDING delivery of each event, (order_id, message_id, body), to each endpoint, in that order; due now,
    or waiting (available_at NULL) for deliveries_release.

    What bulk_create() would do, less its work per row and field: each value is prepared for the database once, by its
    field, as the ORM prepares it, and the rows go in one executemany(). The outbox is written in the transactions of
    the order requests and of the order worker, where bulk_create()'s work per field was most of its cost
    (docs/performance.md, "Webhooks").
    """
    connection = connections[router.db_for_write(Delivery)]

    def prepared(name: str, value):
        return Delivery._meta.get_field(name).get_db_prep_save(value, connection)

    moment = prepared("created_at", now)
    available_at = None if waiting else moment
    each = [
        prepared("event_type", event_type),
        prepared("status", Delivery.Status.PENDING),
        0,
        moment,
        available_at,
        moment,
    ]
    endpoints = [prepared("endpoint", endpoint_id) for endpoint_id in endpoint_ids]
    rows = []
    for order_id, message_id, body in events:
        order = prepared("order_id", order_id)
        rows += [(endpoint, message_id, order, body, *each, "") for endpoint in endpoints]
    columns = ", ".join(connection.ops.quote_name(Delivery._meta.get_field(name).column) for name in _INSERTED)
    table = connection.ops.quote_name(Delivery._meta.db_table)
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(_INSERTED))})", rows)


# The columns _insert_deliveries sets, in its rows' order; the others are NULL.
_INSERTED = (
    "endpoint",
    "message_id",
    "order_id",
    "body",
    "event_type",
    "status",
    "attempts",
    "created_at",
    "available_at",
    "published_at",
    "last_error",
)


def deliveries_release(*, endpoint_ids: list[uuid.UUID], order_ids: list[uuid.UUID] | None = None) -> None:
    """Make due the first unfinished delivery of each of these endpoints' orders (all their orders: order_ids None)
    where it waits, available_at NULL; disabled endpoints' deliveries wait on.

    Called once a commit has finished a delivery or written one behind another (with robust=True: a failure here is
    logged, not raised to whoever committed). Of two such commits on one endpoint and order, the later one's call
    finds the other's rows, so no delivery waits for an event already finished; what a crash or a failure here left
    waiting, deliveries_release_stranded releases.
    """
    chains = Delivery.objects.filter(
        endpoint_id__in=endpoint_ids, endpoint__disabled_at__isnull=True, status=Delivery.Status.PENDING
    )
    if order_ids is not None:
        chains = chains.filter(order_id__in=order_ids)
    firsts = (
        chains.order_by().values("endpoint_id", "order_id").annotate(first=Min("pk")).values_list("first", flat=True)
    )
    _release(list(firsts))


# How often the senders look for stranded deliveries; a crash between a commit and its release is rare.
STRANDED_SWEEP_SECONDS = 60.0


def deliveries_release_stranded(*, limit: int = 10_000) -> int:
    """Release the waiting deliveries that nothing is ahead of any longer, up to limit: a process that died between a
    commit and its deliveries_release left them so. Reads every waiting one, so it runs every STRANDED_SWEEP_SECONDS."""
    stranded = Delivery.objects.first_unfinished().filter(
        status=Delivery.Status.PENDING, available_at__isnull=True, endpoint__disabled_at__isnull=True
    )
    return _release(list(stranded.order_by("pk").values_list("pk", flat=True)[:limit]))


def _release(delivery_ids: list[int]) -> int:
    """Make these deliveries due, those still waiting, and wake the senders for all of them (one released before may
    have waited behind a redelivered event); how many were waiting.

    Due since their event: they were due then but for their turn, and the claims' oldest-first order stays the events'.
    """
    if not delivery_ids:
        return 0
    released = Delivery.objects.filter(pk__in=delivery_ids, status=Delivery.Status.PENDING, available_at__isnull=True)
    count = released.update(available_at=F("created_at"))
    wake_senders(Delivery.objects.filter(pk__in=delivery_ids))
    return count


def _event_type(from_status: str | None, to_status: str) -> str | None:
    """The event a status change is, or None: a retry going back to PENDING (after a failed attempt, or an operator's
    retry of a FAILED order) is none; the order's next event, order.processing, follows it."""
    if from_status is None:
        return "order.created"
    if to_status == Order.Status.PENDING:
        return None
    return f"order.{to_status.lower()}"


def deliveries_claim(
    *,
    limit: int,
    busy: dict[uuid.UUID, int] | None = None,
    now: datetime | None = None,
    delivery_ids: list[int] | None = None,
) -> list[Attempt]:
    """Lease up to limit due deliveries to this sender, oldest first, in one conditional UPDATE.

    busy: requests this sender has in flight per endpoint; no endpoint gets more than WEBHOOK_ENDPOINT_CONCURRENCY.
    delivery_ids: only these, if due (a Celery task claims the one it was published for).
    Found without locks, so an idle sweep takes no write lock; then only those still due once locked are leased (on
    PostgreSQL and MySQL rows another claim has locked are skipped; SQLite has one writer at a time).
    """
    now = now or timezone.now()
    busy = busy or {}
    cap = settings.WEBHOOK_ENDPOINT_CONCURRENCY
    full = [endpoint_id for endpoint_id, count in busy.items() if count >= cap]
    due = Delivery.objects.due(now)
    if delivery_ids is not None:
        due = due.filter(pk__in=delivery_ids)
    found = due.exclude(endpoint_id__in=full).order_by("pk").values_list("pk", "endpoint_id")
    taken: dict[uuid.UUID, int] = dict(busy)
    chosen = []
    for pk, endpoint_id in found[:limit]:
        if taken.get(endpoint_id, 0) < cap:
            taken[endpoint_id] = taken.get(endpoint_id, 0) + 1
            chosen.append(pk)
    if not chosen:
        return []
    leased_until = now + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)
    with transaction.atomic():
        # The deliveries' rows alone are locked: locking their endpoint's too would make claims skip one another's
        # endpoints (and MariaDB can't lock the rows of one table of a join).
        pending = Delivery.objects.lease_free(now).filter(status=Delivery.Status.PENDING)
        locked = pending.select_for_update(skip_locked=True).filter(pk__in=chosen).order_by("pk")
        fields = ("pk", "endpoint_id", "order_id", "created_at", "message_id", "body", "attempts")
        rows = list(locked.values_list(*fields))
        leased = pending.filter(pk__in=[row[0] for row in rows])
        if leased.update(attempts=F("attempts") + 1, leased_until=leased_until) != len(rows):
            raise RuntimeError("deliveries changed under their row locks")
        metrics_record_deliveries(order_ids=[row[2] for row in rows], attempts=[1] * len(rows))
        endpoints = Endpoint.objects.filter(pk__in={row[1] for row in rows}).in_bulk()
    return [
        Attempt(
            delivery_id=pk,
            endpoint_id=endpoint_id,
            order_id=order_id,
            created_at=created_at,
            url=endpoints[endpoint_id].url,
            message_id=message_id,
            body=body,
            signing_secrets=_signing_secrets(endpoints[endpoint_id], now),
            number=attempts + 1,
            leased_until=leased_until,
        )
        for pk, endpoint_id, order_id, created_at, message_id, body, attempts in rows
    ]


def _signing_secrets(endpoint: Endpoint, now: datetime) -> list[str]:
    """The endpoint's secret, and during a rotation's grace period the one before it."""
    if endpoint.previous_secret and endpoint.previous_secret_expires_at > now:
        return [endpoint.secret, endpoint.previous_secret]
    return [endpoint.secret]


@dataclass(frozen=True)
class Outcome:
    """How an attempt went: the endpoint's status code, or None and why there was none."""

    attempt: Attempt
    status_code: int | None
    error: str = ""

    @property
    def succeeded(self) -> bool:
        return is_success(self.status_code)


def is_success(status_code: int | None) -> bool:
    """Only a 2xx is a success."""
    return status_code is not None and 200 <= status_code < 300


def deliveries_record(*, outcomes: list[Outcome], now: datetime | None = None) -> dict[int, str]:
    """Record how several attempts went, in one transaction: a 2xx is SUCCEEDED; anything else is retried after the
    backoff, or FAILED after WEBHOOK_MAX_ATTEMPTS. A failure also counts against its endpoint, which is disabled after
    WEBHOOK_DISABLE_AFTER of failures without a success. Once it commits, each finished delivery's next event is
    released.

    Returns each recorded delivery's status; an attempt whose lease was taken over is left out, and nothing of it is
    written. The deliveries still held by their attempts are read under lock, so each conditional UPDATE moves exactly
    those: one for the successes of each status code, one for each failure (its backoff is its own).
    """
    now = now or timezone.now()
    with transaction.atomic(), metrics_batch():
        # Delivery rows, then endpoint rows in key order, then counter rows: the order endpoint_delete and the outbox
        # lock them in, so no two transactions wait on each other in a circle.
        pending = Delivery.objects.filter(status=Delivery.Status.PENDING)
        held = pending.select_for_update().filter(pk__in=[outcome.attempt.delivery_id for outcome in outcomes])
        fences = dict(held.order_by("pk").values_list("pk", "leased_until"))
        owned = [
            outcome for outcome in outcomes if fences.get(outcome.attempt.delivery_id) == outcome.attempt.leased_until
        ]
        statuses = {}
        by_code = defaultdict(list)
        for outcome in owned:
            if outcome.succeeded:
                by_code[outcome.status_code].append(outcome.attempt.delivery_id)
                statuses[outcome.attempt.delivery_id] = Delivery.Status.SUCCEEDED
            else:
                statuses[outcome.attempt.delivery_id] = _record_failure(outcome, now)
        for code, delivery_ids in by_code.items():
            succeeded = pending.filter(pk__in=delivery_ids).update(
                status=Delivery.Status.SUCCEEDED,
                delivered_at=now,
                leased_until=None,
                last_status_code=code,
                last_error="",
            )
            if succeeded != len(delivery_ids):
                raise RuntimeError("deliveries changed under their row locks")
        _record_endpoints(owned, now)
        for status in Delivery.FINISHED:
            ended = [outcome.attempt for outcome in owned if statuses[outcome.attempt.delivery_id] == status]
            metrics_record_deliveries(
                order_ids=[attempt.order_id for attempt in ended],
                from_status=Delivery.Status.PENDING,
                to_status=status,
                latencies=[now - attempt.created_at for attempt in ended]
                if status == Delivery.Status.SUCCEEDED
                else None,
            )
        finished = [outcome.attempt for outcome in owned if statuses[outcome.attempt.delivery_id] in Delivery.FINISHED]
        if finished:
            transaction.on_commit(partial(_release_next, finished), robust=True)
    return statuses


def delivery_record_attempt(
    *, attempt: Attempt, status_code: int | None, error: str = "", now: datetime | None = None
) -> str | None:
    """Record how one attempt went, as deliveries_record does; its status, or None if its lease had been taken over."""
    return deliveries_record(outcomes=[Outcome(attempt, status_code, error)], now=now).get(attempt.delivery_id)


def _record_failure(outcome: Outcome, now: datetime) -> str:
    """Write a failed attempt of a delivery held under lock: FAILED after the last attempt, else PENDING until its
    backoff is over."""
    changes = {"leased_until": None, "last_status_code": outcome.status_code, "last_error": outcome.error[:MAX_ERROR]}
    if outcome.attempt.number >= settings.WEBHOOK_MAX_ATTEMPTS:
        changes.update(status=Delivery.Status.FAILED)
    else:
        changes.update(available_at=now + retry_delay(outcome.attempt.number))
    failed = Delivery.objects.filter(pk=outcome.attempt.delivery_id, status=Delivery.Status.PENDING)
    if not failed.update(**changes):
        raise RuntimeError("a delivery changed under its row lock")
    return changes.get("status", Delivery.Status.PENDING)


def _record_endpoints(outcomes: list[Outcome], now: datetime) -> None:
    """A success ends its endpoint's failing streak; a failure starts one, and one a day long disables the endpoint.
    Endpoint by endpoint, in key order. An endpoint with a success in the batch is not failing everything: a failure
    beside it starts a new streak."""
    succeeded: set[uuid.UUID] = set()
    errors: dict[uuid.UUID, str] = {}  # each endpoint's last failure
    for outcome in outcomes:
        if outcome.succeeded:
            succeeded.add(outcome.attempt.endpoint_id)
        else:
            errors[outcome.attempt.endpoint_id] = outcome.error
    for endpoint_id in sorted(succeeded | errors.keys()):
        endpoint = Endpoint.objects.filter(pk=endpoint_id)
        if endpoint_id in errors and endpoint_id in succeeded:
            endpoint.update(failing_since=now)
            continue
        if endpoint_id in succeeded:
            endpoint.filter(failing_since__isnull=False).update(failing_since=None)
            continue
        error = errors[endpoint_id]
        endpoint.filter(failing_since__isnull=True).update(failing_since=now)
        hours = settings.WEBHOOK_DISABLE_AFTER.total_seconds() / 3600
        reason = f"Every attempt failed for {hours:g} hours; the last: {error}"
        failing_for_too_long = endpoint.filter(
            disabled_at__isnull=True, failing_since__lte=now - settings.WEBHOOK_DISABLE_AFTER
        )
        if failing_for_too_long.update(disabled_at=now, disabled_reason=reason[:MAX_ERROR]):
            transaction.on_commit(partial(_hold_deliveries, endpoint_id), robust=True)


def _release_next(finished: list[Attempt]) -> None:
    """Release the event after each of these finished deliveries."""
    deliveries_release(
        endpoint_ids=list({attempt.endpoint_id for attempt in finished}),
        order_ids=list({attempt.order_id for attempt in finished}),
    )


def _hold_deliveries(endpoint_id: uuid.UUID) -> None:
    """A disabled endpoint's deliveries wait until it is enabled (endpoint_enable releases them): claims pass over
    them. After the commit that disabled it, so a big endpoint's rows are not locked with the rows that commit holds."""
    # Not those being sent: a sender recording one locks it, and this would lock the endpoint's rows in another order.
    # Their outcome sets available_at anyway, and the claim passes over a disabled endpoint's.
    unsent = Delivery.objects.lease_free(timezone.now()).filter(endpoint_id=endpoint_id, status=Delivery.Status.PENDING)
    unsent.update(available_at=None)


def delivery_redeliver(*, delivery_id: int) -> None:
    """Send a FAILED delivery again, with all its attempts, as soon as a sender can; raises DeliveryNotFailed."""
    now = timezone.now()
    with transaction.atomic():
        # Locked, so the attempts it forgets are the ones its metrics take back.
        failed = Delivery.objects.select_for_update().filter(pk=delivery_id, status=Delivery.Status.FAILED)
        found = failed.values_list("order_id", "attempts").first()
        if found is None or not failed.update(status=Delivery.Status.PENDING, attempts=0, available_at=now):
            raise DeliveryNotFailed(delivery_id)
        order_id, attempts = found
        metrics_record_deliveries(
            order_ids=[order_id],
            from_status=Delivery.Status.FAILED,
            to_status=Delivery.Status.PENDING,
            attempts=[-attempts],
        )
        transaction.on_commit(partial(wake_senders, Delivery.objects.filter(pk=delivery_id)))


def deliveries_send_due(*, lost_after: timedelta, limit: int) -> list[int]:
    """Send the due deliveries no task is out for, oldest first (Celery mode): retries whose backoff is over, leases
    that expired, and deliveries whose message was lost (published longer than lost_after ago).

    Each is marked published now, so however many sweepers run, one publishes it once (a lost one again after
    lost_after). Found without locks, then only those locked, as orders_send_due does.
    """
    now = timezone.now()
    unpublished = Delivery.objects.due(now).unpublished(now, lost_after=lost_after)
    if not (found := list(unpublished.order_by("pk").values_list("pk", flat=True)[:limit])):
        return []
    with transaction.atomic():
        # The deliveries' rows alone are locked, as deliveries_claim locks them.
        pending = (
            Delivery.objects.lease_free(now)
            .unpublished(now, lost_after=lost_after)
            .filter(status=Delivery.Status.PENDING)
        )
        locked = pending.select_for_update(skip_locked=True).filter(pk__in=found)
        delivery_ids = list(locked.order_by("pk").values_list("pk", flat=True))
        Delivery.objects.filter(pk__in=delivery_ids).update(published_at=now)
        transaction.on_commit(partial(wake_senders, Delivery.objects.filter(pk__in=delivery_ids)))
    return delivery_ids


def deliveries_prune(*, older_than: timedelta, batch: int = 5000) -> int:
    """Delete the deliveries that succeeded longer than older_than ago, and uncount them; how many were deleted.

    FAILED ones stay for the admin to redeliver, and PENDING ones are still to be sent. In transactions of at most
    `batch` rows, each locking its rows before the counters, as endpoint_delete does.
    """
    deleted = 0
    while True:
        cutoff = timezone.now() - older_than
        with transaction.atomic():
            old = Delivery.objects.filter(status=Delivery.Status.SUCCEEDED, delivered_at__lt=cutoff)
            deliveries = list(old.select_for_update().order_by("pk").only(*_COUNTED_FIELDS)[:batch])
            Delivery.objects.filter(pk__in=[delivery.pk for delivery in deliveries]).delete()
            metrics_record_deliveries_removed(deliveries=deliveries)
        deleted += len(deliveries)
        if len(deliveries) < batch:
            return deleted


def retry_delay(attempt: int) -> timedelta:
    """Exponential backoff after a failed attempt, with jitter, so deliveries failed together are not retried together:
    about base, 2 x base, 4 x base, ..., at most WEBHOOK_RETRY_BACKOFF_MAX_SECONDS."""
    backoff = min(
        settings.WEBHOOK_RETRY_BACKOFF_SECONDS * 2 ** (attempt - 1), settings.WEBHOOK_RETRY_BACKOFF_MAX_SECONDS
    )
    return timedelta(seconds=backoff * random.uniform(0.8, 1.2))
