"""Factories for test data."""

from decimal import Decimal

import factory

from orders.models import Order


class OrderFactory(factory.django.DjangoModelFactory):
    """A PENDING order as the API would have stored it."""

    class Meta:
        model = Order

    user_id = factory.Sequence(lambda n: f"user{n}")
    item_ids = factory.LazyFunction(lambda: [1, 2, 3])
    total_amount = Decimal("90.99")
