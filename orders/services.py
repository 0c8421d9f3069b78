"""Every write to an order: creating it, and each status change as one compare-and-set UPDATE."""

import hashlib
import json
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial, reduce
from operator import or_

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from metrics.histograms import Completion
from metrics.services import metrics_batch, metrics_record_transitions
from order_system.db import GroupCommit
from orders.models import TRANSITIONS, IdempotencyKey, Order
from orders.processors import OrderSnapshot
from orders.queueing import enqueue_order
from webhooks.services import webhooks_record_transitions

logger = logging.getLogger("orders.transitions")


class OrderAlreadyExists(Exception):
    """A client-chosen order_id is already taken by another order."""


class IdempotencyKeyReused(Exception):
    """An Idempotency-Key came back with a different request than the one it was first used for."""


class OrderForAnotherUser(Exception):
    """A caller that sees only its own orders asked to place one for another user."""


class InvalidTransition(Exception):
    """A status change that TRANSITIONS does not allow."""


class OrderNotInStatus(Exception):
    """The order is not in the status the operation needs; .status says where it is."""

    def __init__(self, status: str):
        super().__init__(status)
        self.status = status


@dataclass(frozen=True)
class Claim:
    """Proof that a worker owns one attempt at an order; started_at fences out any earlier, presumed-dead owner."""

    order: OrderSnapshot
    started_at: datetime

    @property
    def order_id(self) -> uuid.UUID:
        return self.order.order_id

    @property
    def attempt(self) -> int:
        return self.order.attempt


def order_create(
    *,
    user_id: str | None = None,
    item_ids: list[int],
    total_amount: Decimal,
    order_id: uuid.UUID | None = None,
    idempotency_key: str | None = None,
    caller: str = "",
    owner: str | None = None,
) -> tuple[Order, bool]:
    """Store an order and queue it once committed; returns (order, created), replaying a repeated idempotency key.

    Idempotency keys belong to a caller (see IdempotencyKey.caller): another caller's key is not a repeat. A caller
    seeing only its own orders (owner, its user_id) places them only for itself: user_id defaults to owner, and any
    other raises OrderForAnotherUser. Everyone else names the user.
    """
    if owner is not None:
        if user_id not in (None, owner):
            raise OrderForAnotherUser(user_id)
        user_id = owner
    fingerprint = None
    if idempotency_key is not None:
        fingerprint = _fingerprint(order_id=order_id, user_id=user_id, item_ids=item_ids, total_amount=total_amount)
        if original := _replay(caller, idempotency_key, fingerprint):
            return original, False
    order = Order(order_id=order_id or uuid.uuid4(), user_id=user_id, item_ids=item_ids, total_amount=total_amount)
    try:
        _order_inserts.run(_NewOrder(order, caller, idempotency_key, fingerprint))
    except IntegrityError:
        # Someone committed first: a concurrent request with the same key, or an order with the same order_id.
        if idempotency_key is not None and (original := _replay(caller, idempotency_key, fingerprint)):
            return original, False
        if order_id is not None and Order.objects.filter(pk=order_id).exists():
            raise OrderAlreadyExists(order_id) from None
        raise
    # Committed by now, or, inside a caller's transaction, queued when that commits. Each request queues its own
    # order, so nobody waits while the batch's leader sends other orders (inline processing, a slow broker).
    transaction.on_commit(partial(enqueue_order, order.pk))
    return order, True


@dataclass(frozen=True)
class _NewOrder:
    """An order to insert and, if it came with one, the caller's idempotency key and request fingerprint."""

    order: Order
    caller: str
    idempotency_key: str | None
    fingerprint: str | None


def _insert_orders(new_orders: list[_NewOrder]) -> None:
    """Insert new orders, their keys, their count and their webhooks' deliveries, in GroupCommit's transaction."""
    now = timezone.now()
    for new in new_orders:
        # Stamped under the write lock: on SQLite, newer orders then never commit before older ones.
        new.order.created_at = new.order.available_at = new.order.updated_at = now
    Order.objects.bulk_create([new.order for new in new_orders])
    if keys := [
        IdempotencyKey(caller=new.caller, key=new.idempotency_key, fingerprint=new.fingerprint, order=new.order)
        for new in new_orders
        if new.idempotency_key is not None
    ]:
        IdempotencyKey.objects.bulk_create(keys)
    order_ids = [new.order.pk for new in new_orders]
    # One upsert for the orders' counts and their deliveries', its rows locked in the one order every writer keeps, and
    # after the deliveries (which hold their endpoints' rows): a second upsert would lock rows out of that order.
    with metrics_batch():
        metrics_record_transitions(order_ids=order_ids, from_status=None, to_status=Order.Status.PENDING)
        webhooks_record_transitions(
            order_ids=order_ids,
            from_status=None,
            to_status=Order.Status.PENDING,
            now=now,
            orders=[new.order for new in new_orders],
        )


# Concurrent requests' orders share one transaction: SQLite lets one writer in at a time, so under load the
# hand-over of that lock, not the work, decided how many orders a second could be accepted.
_order_inserts = GroupCommit(_insert_orders)


def orders_claim(*, order_ids: list[uuid.UUID]) -> list[Claim]:
    """Take ownership of those of the given PENDING orders that are due, in one UPDATE, in the order given.

    Orders another worker holds or has taken, cancelled ones and ones waiting for a retry are left out. The rows
    are locked while they are read (PostgreSQL and MySQL skip rows another claim has locked; SQLite has one writer
    at a time), so the conditional UPDATE that follows moves exactly the rows that were read.
    """
    now = timezone.now()
    with transaction.atomic(savepoint=False):  # a claim that fails takes the caller's transaction with it
        due = Order.objects.select_for_update(skip_locked=True).due(now).filter(pk__in=order_ids)
        found = {row[0]: row for row in due.order_by().values_list(*_SNAPSHOT_FIELDS, "available_at")}
        claims = [_claim(found[pk][:-1], now) for pk in dict.fromkeys(order_ids) if pk in found]
        _transition(
            [
                _Move(claim.order_id, claim.attempt, claim.order.created_at, since=found[claim.order_id][-1])
                for claim in claims
            ],
            Order.Status.PENDING,
            Order.Status.PROCESSING,
            now=now,
            guard=Q(available_at__lte=now),
            attempts=F("attempts") + 1,
            started_at=now,
        )
    return claims


def orders_complete(*, claims: list[Claim], results: dict[uuid.UUID, dict | None] | None = None) -> int:
    """Finish the orders of these claims that their worker still owns, storing each one's result; returns how many."""
    now = timezone.now()
    stored = {order_id: result for order_id, result in (results or {}).items() if result is not None}
    changes = {}
    if stored:
        as_json = models.JSONField()
        whens = [When(pk=order_id, then=Value(result, output_field=as_json)) for order_id, result in stored.items()]
        changes["result"] = Case(*whens, default=Value(None, output_field=as_json), output_field=as_json)
    return len(_move_claims(claims, Order.Status.COMPLETED, now, completed_at=now, **changes))


def order_fail_attempt(*, claim: Claim, reason: str, final: bool = False, delay: float | None = None) -> str | None:
    """Record a failed attempt: retry after the backoff (or delay seconds), or FAILED if final or the last attempt.

    Returns the status the order moved to, or None if this worker no longer owned it.
    """
    now = timezone.now()
    if final or claim.attempt >= settings.ORDER_MAX_ATTEMPTS:
        failed = _move_claims(
            [claim],
            Order.Status.FAILED,
            now,
            failure_reason=reason,
            completed_at=now,
            times_failed=F("times_failed") + 1,
        )
        return Order.Status.FAILED if failed else None
    retry_at = now + (retry_delay(claim.attempt) if delay is None else timedelta(seconds=delay))
    if not _move_claims([claim], Order.Status.PENDING, now, retried=True, failure_reason=reason, available_at=retry_at):
        return None
    transaction.on_commit(partial(enqueue_order, claim.order_id, not_before=retry_at))
    return Order.Status.PENDING


def orders_release(*, claims: list[Claim]) -> int:
    """Hand unfinished orders back to PENDING at shutdown; the interrupted attempts do not count. Returns how many."""
    now = timezone.now()
    return len(_move_claims(claims, Order.Status.PENDING, now, available_at=now, attempts=F("attempts") - 1))


def order_cancel(*, order_id: uuid.UUID) -> Order:
    """Cancel a PENDING order so that no worker ever processes it; raises OrderNotInStatus otherwise."""
    _operator_transition(order_id, Order.Status.PENDING, Order.Status.CANCELLED)
    return Order.objects.get(pk=order_id)


def order_retry(*, order_id: uuid.UUID) -> None:
    """Give a FAILED order one more attempt and queue it; raises OrderNotInStatus otherwise."""
    _operator_transition(order_id, Order.Status.FAILED, Order.Status.PENDING, retried=True, completed_at=None)
    transaction.on_commit(partial(enqueue_order, order_id))


def orders_expire_leases() -> int:
    """Count claims older than ORDER_LEASE_SECONDS as failed attempts: their worker died (or hung)."""
    now = timezone.now()
    expired = Order.objects.lease_expired(now - timedelta(seconds=settings.ORDER_LEASE_SECONDS)).values_list(
        *_SNAPSHOT_FIELDS, "started_at"
    )
    reason = "Lease expired: the worker stopped responding."
    # Each row holds the attempt that ran: the one its claim counted.
    claims = [_claim(row[:-1], row[-1], counted=True) for row in expired]
    return sum(order_fail_attempt(claim=claim, reason=reason) is not None for claim in claims)


def orders_send_due(*, lost_after: timedelta, limit: int) -> list[uuid.UUID]:
    """Send the due PENDING orders no message is out for, oldest first: retries whose backoff is over, and orders due
    for longer than lost_after, whose message was lost or never sent.

    Each is marked sent, due from now, so however many sweepers run, one sends it once (a lost one again after
    lost_after).
    """
    now = timezone.now()
    unsent = Order.objects.backoff_over(now) | Order.objects.due(now - lost_after)
    # Found without locks, then only those locked: InnoDB (MySQL, MariaDB) locks every row a locking read scans, and a
    # claim skipping locked rows passed over the PENDING orders this scan went through.
    if not (found := list(unsent.order_by("created_at").values_list("pk", flat=True)[:limit])):
        return []
    with transaction.atomic():
        locked = unsent.select_for_update(skip_locked=True).filter(pk__in=found)
        order_ids = list(locked.order_by("created_at").values_list("pk", flat=True))
        Order.objects.filter(pk__in=order_ids, status=Order.Status.PENDING).update(available_at=now, updated_at=now)
        for order_id in order_ids:
            transaction.on_commit(partial(enqueue_order, order_id))
    return order_ids


def idempotency_keys_prune(*, older_than: timedelta) -> int:
    """Forget idempotency keys past their retention window; returns how many were deleted."""
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=timezone.now() - older_than).delete()
    return deleted


def retry_delay(attempt: int) -> timedelta:
    """Exponential backoff after a failed attempt: base, 2 x base, 4 x base, ..., at most the cap."""
    backoff = settings.ORDER_RETRY_BACKOFF_SECONDS * 2 ** (attempt - 1)
    return timedelta(seconds=min(backoff, settings.ORDER_RETRY_BACKOFF_MAX_SECONDS))


def _operator_transition(order_id: uuid.UUID, from_status: str, to_status: str, **changes) -> None:
    """A status change asked for by a person (API or admin); raises Order.DoesNotExist or OrderNotInStatus."""
    with transaction.atomic():
        current = Order.objects.select_for_update().values("status", "attempts", "created_at", "updated_at")
        current = current.get(pk=order_id)
        if current["status"] != from_status:
            raise OrderNotInStatus(current["status"])
        now = timezone.now()
        move = _Move(order_id, current["attempts"], current["created_at"], since=current["updated_at"])
        _transition([move], from_status, to_status, now=now, available_at=now, **changes)


def _move_claims(claims: list[Claim], to_status: str, now: datetime, **changes) -> list[Claim]:
    """Move the orders of these claims out of PROCESSING with one conditional UPDATE, but only those still owned.

    Each order is fenced by its own claim's started_at, so claims of different batches may go together. The rows are
    read under lock first, so the UPDATE moves exactly the orders found still owned; those are returned.
    """
    if not claims:
        return []
    with transaction.atomic(savepoint=False):  # a move that fails takes the caller's transaction with it
        held = Order.objects.select_for_update().filter(
            pk__in=[claim.order_id for claim in claims], status=Order.Status.PROCESSING
        )
        fences = dict(held.order_by().values_list("pk", "started_at"))
        owned = [claim for claim in claims if fences.get(claim.order_id) == claim.started_at]
        by_fence: dict[datetime, list[uuid.UUID]] = defaultdict(list)
        for claim in owned:
            by_fence[claim.started_at].append(claim.order_id)
        _transition(
            [_Move(claim.order_id, claim.attempt, claim.order.created_at, since=claim.started_at) for claim in owned],
            Order.Status.PROCESSING,
            to_status,
            now=now,
            guard=reduce(or_, (Q(pk__in=ids, started_at=fence) for fence, ids in by_fence.items()), Q()),
            **changes,
        )
    return owned


_SNAPSHOT_FIELDS = ("pk", "user_id", "item_ids", "total_amount", "attempts", "created_at")


def _claim(row: tuple, started_at: datetime, *, counted: bool = False) -> Claim:
    """A claim from a row of _SNAPSHOT_FIELDS; attempts there are those before this claim unless counted."""
    order_id, user_id, item_ids, total_amount, attempts, created_at = row
    attempt = attempts if counted else attempts + 1
    snapshot = OrderSnapshot(order_id, user_id, tuple(item_ids), total_amount, attempt, created_at)
    return Claim(snapshot, started_at)


@dataclass(frozen=True)
class _Move:
    """One order's part in a status change, as its log line and the metrics tell it."""

    order_id: uuid.UUID
    attempt: int
    created_at: datetime
    since: datetime  # when the order entered the status it leaves


def _transition(
    moves: list[_Move],
    from_status: str,
    to_status: str,
    *,
    now: datetime,
    guard: Q | None = None,
    retried: bool = False,
    **changes,
) -> None:
    """Change the status of orders with one conditional UPDATE, so that two workers can never both own an order.

    The caller has read these rows under lock, so every order moves; a shortfall is a bug, raised, which rolls the
    whole change back. guard adds conditions (the claims' fences). The metrics are counted, and the webhooks' deliveries
    written, in the same transaction; retried tells the metrics a failed order or attempt goes round again.
    """
    if to_status not in TRANSITIONS[from_status]:
        raise InvalidTransition(f"{from_status} -> {to_status}")
    if not moves:
        return
    order_ids = [move.order_id for move in moves]
    # One upsert for the counts, after the deliveries, as in _insert_orders; whatever it raises rolls back the
    # caller's whole transaction.
    with transaction.atomic(savepoint=False), metrics_batch():
        moved = Order.objects.filter(guard or Q(), pk__in=order_ids, status=from_status).update(
            status=to_status, updated_at=now, **changes
        )
        if moved != len(order_ids):
            raise RuntimeError("orders changed under their row locks")
        completions = None
        if to_status == Order.Status.COMPLETED:
            completions = [Completion(move.created_at, move.since, now) for move in moves]
        metrics_record_transitions(
            order_ids=order_ids, from_status=from_status, to_status=to_status, retried=retried, completions=completions
        )
        webhooks_record_transitions(order_ids=order_ids, from_status=from_status, to_status=to_status, now=now)
    for move in moves:
        logger.info(
            "order_id=%s from=%s to=%s attempt=%d duration=%.3f",
            move.order_id,
            from_status,
            to_status,
            move.attempt,
            (now - move.since).total_seconds(),
        )


def _fingerprint(**request) -> str:
    """Hash the validated request, so a retry can be told apart from a different request under the same key."""
    canonical = json.dumps(request, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(caller: str, key: str, fingerprint: str) -> Order | None:
    """The order this caller's key already created, or None if the key is new to this caller."""
    stored = IdempotencyKey.objects.select_related("order").filter(caller=caller, key=key).first()
    if stored is None:
        return None
    if stored.fingerprint != fingerprint:
        raise IdempotencyKeyReused(key)
    return stored.order
