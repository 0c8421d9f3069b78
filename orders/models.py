"""Orders, the one table of allowed status changes, and idempotency keys."""

import uuid
from datetime import datetime

from django.db import models
from django.db.models import F
from django.utils import timezone


class OrderStatus(models.TextChoices):
    """Where an order is in its life; Order.Status is the usual way to name it."""

    PENDING = "PENDING"  # accepted and committed, waiting for a worker
    PROCESSING = "PROCESSING"  # claimed by exactly one worker
    COMPLETED = "COMPLETED"  # final: processed successfully
    FAILED = "FAILED"  # final until an operator retries it
    CANCELLED = "CANCELLED"  # final: cancelled before a worker claimed it


class OrderQuerySet(models.QuerySet):
    """The questions asked of the orders table, by the API and the workers, each named once."""

    def visible_to(self, owner: str | None) -> "OrderQuerySet":
        """The orders a caller may see: one user's (owner, their user_id), or with None every order."""
        return self if owner is None else self.filter(user_id=owner)

    def due(self, now: datetime) -> "OrderQuerySet":
        """PENDING orders a worker may claim at `now` (a retry waits for its backoff)."""
        return self.filter(status=OrderStatus.PENDING, available_at__lte=now)

    def backoff_over(self, now: datetime) -> "OrderQuerySet":
        """Due PENDING orders whose retry backoff has run out and that nothing has sent since (Celery mode).

        A failed attempt sets available_at past its own updated_at, by the backoff; every other write that leaves an
        order PENDING, sending it included, sets both to the same moment.
        """
        return self.due(now).filter(available_at__gt=F("updated_at"))

    def lease_expired(self, claimed_before: datetime) -> "OrderQuerySet":
        """PROCESSING orders whose claim is older than `claimed_before`: their worker died or hung."""
        return self.filter(status=OrderStatus.PROCESSING, started_at__lt=claimed_before)


class Order(models.Model):
    """An order a client placed; its status only ever changes through orders.services."""

    Status = OrderStatus

    order_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user_id = models.CharField(max_length=128)
    item_ids = models.JSONField()
    total_amount = models.DecimalField(max_digits=12, decimal_places=2)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)  # attempts that ran (or run now); a shutdown hand-back is not one
    times_failed = models.PositiveIntegerField(default=0)  # entries into FAILED, which an operator's retry can undo
    failure_reason = models.TextField(blank=True, default="")
    result = models.JSONField(null=True, blank=True, editable=False)  # what the processor returned on completion
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # When a PENDING order may next be claimed: its creation, or a failed attempt's time plus backoff.
    available_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = OrderQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-order_id"]
        indexes = [
            # Each list query (all, by status, by user) walks one index from its cursor's position, newest first, and
            # stops at the page size; order_id orders the orders that share a created_at (a GroupCommit batch).
            models.Index(fields=["-created_at", "-order_id"], name="order_created_id_idx"),
            models.Index(fields=["status", "-created_at", "-order_id"], name="order_status_created_id_idx"),
            models.Index(fields=["user_id", "-created_at", "-order_id"], name="order_user_created_id_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(total_amount__gte=0), name="order_total_amount_not_negative"),
            models.CheckConstraint(condition=models.Q(status__in=OrderStatus.values), name="order_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id} ({self.status})"


# Every status change the system may make: FROM -> the statuses it may move to. Nothing else is allowed.
TRANSITIONS: dict[str, frozenset[str]] = {
    Order.Status.PENDING: frozenset({Order.Status.PROCESSING, Order.Status.CANCELLED}),
    Order.Status.PROCESSING: frozenset({Order.Status.COMPLETED, Order.Status.FAILED, Order.Status.PENDING}),
    Order.Status.FAILED: frozenset({Order.Status.PENDING}),
    Order.Status.COMPLETED: frozenset(),
    Order.Status.CANCELLED: frozenset(),
}


class IdempotencyKey(models.Model):
    """A client's Idempotency-Key, tied to the order its first request created; each caller has keys of its own."""

    pk = models.CompositePrimaryKey("caller", "key")
    # Whose key it is: "token:<ApiClient.pk>", "user:<User.pk>" (a provider's user: a hash of its id), or "" for every
    # caller of an open API.
    caller = models.CharField(max_length=64)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)  # sha256 of the validated request, to tell a retry from a reuse
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return self.key
