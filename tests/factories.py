"""Factories for test data."""

from decimal import Decimal
from uuid import UUID

import factory

from orders.models import Order
from orders.services import Claim, orders_claim


class OrderFactory(factory.django.DjangoModelFactory):
    """A PENDING order as the API would have stored it."""

    class Meta:
        model = Order

    user_id = factory.Sequence(lambda n: f"user{n}")
    item_ids = factory.LazyFunction(lambda: [1, 2, 3])
    total_amount = Decimal("90.99")


def claim_one(order_id: UUID) -> Claim | None:
    """A worker's claim on one order, or None if it isn't there to take."""
    claims = orders_claim(order_ids=[order_id])
    return claims[0] if claims else None
