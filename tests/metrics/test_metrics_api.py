"""GET /api/metrics/."""

import pytest

from orders.models import Order
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def test_metrics_count_orders_per_status_with_zeros(api):
    OrderFactory.create_batch(2)
    OrderFactory(status=Order.Status.COMPLETED)

    body = api.get("/api/metrics/").json()

    assert body["total_orders"] == 3
    assert body["orders_by_status"] == {"PENDING": 2, "PROCESSING": 0, "COMPLETED": 1, "FAILED": 0, "CANCELLED": 0}


def test_metrics_cost_one_query(api, django_assert_num_queries):
    OrderFactory.create_batch(5)

    with django_assert_num_queries(1):
        api.get("/api/metrics/")
