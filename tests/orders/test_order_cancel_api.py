"""POST /api/orders/{order_id}/cancel/."""

import uuid

import pytest

from orders.models import Order
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def test_cancel_moves_a_pending_order_to_cancelled(api):
    order = OrderFactory()

    response = api.post(f"/api/orders/{order.order_id}/cancel/")

    assert response.status_code == 200
    assert response.json()["status"] == "CANCELLED"
    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED


@pytest.mark.parametrize("status", [s for s in Order.Status if s != Order.Status.PENDING])
def test_cancel_of_an_order_that_is_not_pending_is_a_409_with_its_status(api, status):
    order = OrderFactory(status=status)

    response = api.post(f"/api/orders/{order.order_id}/cancel/")

    assert response.status_code == 409
    assert response.json()["status"] == status
    assert response.json()["errors"][0]["attr"] == "status"
    order.refresh_from_db()
    assert order.status == status


@pytest.mark.parametrize("order_id", [str(uuid.uuid4()), "nope"])
def test_cancel_of_an_unknown_order_is_a_404(api, order_id):
    assert api.post(f"/api/orders/{order_id}/cancel/").status_code == 404
