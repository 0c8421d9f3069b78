"""What every database must store and compare exactly: any character, each microsecond, and no value cut short."""

from datetime import timedelta

import pytest
from django.db import DataError, connection, transaction
from django.utils import timezone

from orders.models import Order
from orders.services import orders_complete
from tests.factories import OrderFactory, claim_one
from tests.helpers import order_body, post_order

pytestmark = pytest.mark.django_db

# Four-byte UTF-8 (emoji, a CJK extension character) beside two-byte and three-byte ones.
USER_ID = "🧾 Zoë 😀 𠜎 €"


def listed(api, **query) -> list[str]:
    response = api.get("/api/orders/", query)
    assert response.status_code == 200
    return [result["order_id"] for result in response.json()["results"]]


def test_a_user_id_of_four_byte_characters_round_trips_and_finds_its_orders(api):
    response = post_order(api, order_body(user_id=USER_ID))

    assert response.status_code == 201
    order_id = response.json()["order_id"]
    assert api.get(f"/api/orders/{order_id}/").json()["user_id"] == USER_ID
    assert Order.objects.get().user_id == USER_ID
    assert listed(api, user_id=USER_ID) == [order_id]


def test_user_ids_differing_only_in_case_accents_or_a_trailing_space_are_different_users(api):
    orders = {user_id: OrderFactory(user_id=user_id) for user_id in ["alice", "Alice", "alicé", "alice "]}

    for user_id, order in orders.items():
        assert listed(api, user_id=user_id) == [str(order.order_id)], user_id


def test_idempotency_keys_differing_only_in_case_or_a_trailing_space_are_different_keys(api):
    keys = ["key", "KEY", '"key "']

    created = {key: post_order(api, **{"Idempotency-Key": key}) for key in keys}

    assert [response.status_code for response in created.values()] == [201, 201, 201]
    assert len({response.json()["order_id"] for response in created.values()}) == 3


def test_timestamps_keep_their_microseconds_so_a_claim_fences_its_own_attempt():
    at = timezone.now().replace(microsecond=123457) - timedelta(hours=1)
    order = OrderFactory(created_at=at)
    claim = claim_one(order.pk)

    order.refresh_from_db()
    assert order.created_at == at
    assert order.started_at == claim.started_at  # to the microsecond: the fence of every later move
    assert orders_complete(claims=[claim]) == 1


@pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite stores a string of any length in any column")
def test_the_database_refuses_a_value_too_long_for_its_column_rather_than_cutting_it():
    with pytest.raises(DataError), transaction.atomic():
        OrderFactory(user_id="x" * 129)

    assert not Order.objects.exists()
