"""Every write to an order: creating it, and each status change as one compare-and-set UPDATE."""

import hashlib
import json
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from orders.models import TRANSITIONS, IdempotencyKey, Order
from orders.queueing import enqueue_order


class OrderAlreadyExists(Exception):
    """A client-chosen order_id is already taken by another order."""


class IdempotencyKeyReused(Exception):
    """An Idempotency-Key came back with a different request than the one it was first used for."""


class InvalidTransition(Exception):
    """A status change that TRANSITIONS does not allow."""


def order_create(
    *,
    user_id: str,
    item_ids: list[int],
    total_amount: Decimal,
    order_id: uuid.UUID | None = None,
    idempotency_key: str | None = None,
) -> tuple[Order, bool]:
    """Store an order and queue it once committed; returns (order, created), replaying a repeated idempotency key."""
    fingerprint = _fingerprint(order_id=order_id, user_id=user_id, item_ids=item_ids, total_amount=total_amount)
    try:
        with transaction.atomic():
            if idempotency_key is not None and (original := _replay(idempotency_key, fingerprint)):
                return original, False
            order = Order.objects.create(
                order_id=order_id or uuid.uuid4(), user_id=user_id, item_ids=item_ids, total_amount=total_amount
            )
            if idempotency_key is not None:
                IdempotencyKey.objects.create(key=idempotency_key, fingerprint=fingerprint, order=order)
            transaction.on_commit(partial(enqueue_order, order.pk))
    except IntegrityError:
        # Someone committed first: a concurrent request with the same key, or an order with the same order_id.
        if idempotency_key is not None and (original := _replay(idempotency_key, fingerprint)):
            return original, False
        if order_id is not None and Order.objects.filter(pk=order_id).exists():
            raise OrderAlreadyExists(order_id) from None
        raise
    return order, True


def order_claim(*, order_id: uuid.UUID) -> bool:
    """Take ownership of a PENDING order; False if another worker or process got it first."""
    now = timezone.now()
    return _transition(
        order_id, Order.Status.PENDING, Order.Status.PROCESSING, now, started_at=now, attempts=F("attempts") + 1
    )


def order_complete(*, order_id: uuid.UUID) -> bool:
    """Finish an order this worker owns; False if it no longer owns it."""
    now = timezone.now()
    return _transition(order_id, Order.Status.PROCESSING, Order.Status.COMPLETED, now, completed_at=now)


def idempotency_keys_prune(*, older_than: timedelta) -> int:
    """Forget idempotency keys past their retention window; returns how many were deleted."""
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=timezone.now() - older_than).delete()
    return deleted


def _transition(order_id: uuid.UUID, from_status: str, to_status: str, now: datetime, **changes) -> bool:
    """Change status with one conditional UPDATE, so that two workers can never both own an order."""
    if to_status not in TRANSITIONS[from_status]:
        raise InvalidTransition(f"{from_status} -> {to_status}")
    moved = Order.objects.filter(pk=order_id, status=from_status).update(status=to_status, updated_at=now, **changes)
    return moved == 1


def _fingerprint(**request) -> str:
    """Hash the validated request, so a retry can be told apart from a different request under the same key."""
    canonical = json.dumps(request, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(key: str, fingerprint: str) -> Order | None:
    """The order a key already created, or None if the key is new."""
    stored = IdempotencyKey.objects.select_related("order").filter(key=key).first()
    if stored is None:
        return None
    if stored.fingerprint != fingerprint:
        raise IdempotencyKeyReused(key)
    return stored.order
