"""Reads of orders."""

from uuid import UUID

from django.db.models import QuerySet
from django.utils import timezone

from orders.models import Order


def order_get(*, order_id: UUID, owner: str | None) -> Order:
    """One order by id, among those `owner` may see (see OrderQuerySet.visible_to); raises Order.DoesNotExist.

    Another user's order is as unknown as a missing one: the answer says nothing of whether it exists.
    """
    return Order.objects.visible_to(owner).get(pk=order_id)


def order_list(*, owner: str | None, status: str | None = None, user_id: str | None = None) -> QuerySet[Order]:
    """The orders `owner` may see, newest first, optionally narrowed by status and user (exactly as stored).

    Each narrowing, and a user's own orders, has its own index.
    """
    orders = Order.objects.visible_to(owner)
    if status is not None:
        orders = orders.filter(status=status)
    if user_id is not None:
        orders = orders.filter(user_id=user_id)
    return orders.order_by("-created_at", "-order_id")


def order_ids_due(*, limit: int) -> list[UUID]:
    """PENDING orders a worker may claim now, oldest first; walks the (status, created_at, order_id) index."""
    return list(Order.objects.due(timezone.now()).order_by("created_at").values_list("pk", flat=True)[:limit])
