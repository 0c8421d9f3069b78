"""Webhook endpoints, and their deliveries: the outbox, one row per event per endpoint, written with the change."""

import uuid
from datetime import datetime, timedelta

from django.db import models
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

# The order events an endpoint may subscribe to; "*" subscribes to all of them.
EVENT_TYPES = ("order.created", "order.processing", "order.completed", "order.failed", "order.cancelled")
ALL_EVENTS = "*"


class EndpointQuerySet(models.QuerySet):
    """The questions asked of the endpoints table."""

    def enabled(self) -> "EndpointQuerySet":
        """Endpoints that still get events: not disabled after a day of failures."""
        return self.filter(disabled_at__isnull=True)


class Endpoint(models.Model):
    """A URL that receives signed order events; its secret is shown once, when it is made or rotated."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    url = models.URLField(max_length=2000)
    events = models.JSONField()  # event types from EVENT_TYPES, or ["*"]
    description = models.CharField(max_length=500, blank=True, default="")
    secret = models.CharField(max_length=64)  # whsec_ + base64 of 32 random bytes
    # After a rotation the old secret signs too, until previous_secret_expires_at, so receivers can switch over.
    previous_secret = models.CharField(max_length=64, blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    failing_since = models.DateTimeField(null=True, blank=True)  # the first failed attempt since the last success
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.TextField(blank=True, default="")

    objects = EndpointQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.url


class DeliveryStatus(models.TextChoices):
    """Where a delivery is; Delivery.Status is the usual way to name it."""

    PENDING = "PENDING"  # not delivered yet: waiting for its turn, for its retry, or being sent (leased_until)
    SUCCEEDED = "SUCCEEDED"  # final: the endpoint answered 2xx
    FAILED = "FAILED"  # final until redelivered: WEBHOOK_MAX_ATTEMPTS attempts failed


class DeliveryQuerySet(models.QuerySet):
    """The questions asked of the deliveries table, by the sender and the admin, each named once."""

    def lease_free(self, now: datetime) -> "DeliveryQuerySet":
        """Deliveries no sender holds: never leased, done with, or leased to a sender presumed dead."""
        return self.filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))

    def due(self, now: datetime) -> "DeliveryQuerySet":
        """Deliveries that may be sent at `now`: PENDING, past their backoff, not leased to a sender, their endpoint
        enabled, and the oldest unfinished one of their endpoint and order, so one order's events arrive in order."""
        return (
            self.lease_free(now)
            .first_unfinished()
            .filter(status=DeliveryStatus.PENDING, available_at__lte=now, endpoint__disabled_at__isnull=True)
        )

    def first_unfinished(self) -> "DeliveryQuerySet":
        """Deliveries with no earlier delivery of their endpoint and order still PENDING: their turn has come."""
        earlier = self.model.objects.filter(
            endpoint=OuterRef("endpoint"),
            order_id=OuterRef("order_id"),
            status=DeliveryStatus.PENDING,
            pk__lt=OuterRef("pk"),
        )
        return self.filter(~Exists(earlier))

    def unpublished(self, now: datetime, *, lost_after: timedelta) -> "DeliveryQuerySet":
        """Deliveries no task is out for (Celery mode), once due: a retry or an expired lease not published since, and
        deliveries published longer than lost_after ago, whose message was lost."""
        return self.filter(
            Q(published_at__lt=F("available_at"))
            | Q(published_at__lt=F("leased_until"))
            | Q(published_at__lt=now - lost_after)
        )


class Delivery(models.Model):
    """One event for one endpoint, with the exact body every attempt sends; its status changes only through
    webhooks.services."""

    Status = DeliveryStatus
    FINISHED = frozenset({DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED})  # the next event of its order may go

    id = models.BigAutoField(primary_key=True)  # increasing: one order's events for one endpoint go in id order
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    message_id = models.CharField(max_length=64)  # the webhook-id header: one per event, the same on every retry
    event_type = models.CharField(max_length=32)
    order_id = models.UUIDField()
    body = models.TextField()  # the JSON sent, as text, so every attempt signs and sends the same bytes
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)  # started, the one being sent included
    created_at = models.DateTimeField(default=timezone.now, editable=False)  # when the event happened
    # When the next attempt may start. NULL while it waits for an earlier event of its endpoint and order to finish,
    # or for its endpoint to be enabled: a claim's index scan then passes over the deliveries queued behind a failing
    # endpoint, however many. The services release it (webhooks.services.deliveries_release).
    available_at = models.DateTimeField(default=timezone.now, null=True, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True)  # being sent; past this, its sender is presumed dead
    # Celery mode: when a task to send it was last published; its commit publishes it, then deliveries_send_due.
    published_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["status", "available_at"], name="delivery_status_available_idx"),
            models.Index(fields=["endpoint", "order_id", "status", "id"], name="delivery_endpoint_order_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "message_id"], name="delivery_endpoint_message_unique"),
            models.CheckConstraint(condition=Q(status__in=DeliveryStatus.values), name="delivery_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} {self.event_type} ({self.status})"
