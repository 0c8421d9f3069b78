"""POST /api/orders/: what is accepted, what is refused, and that refusals change nothing."""

import json
import uuid
from decimal import Decimal

import pytest

from orders.models import Order
from tests.factories import OrderFactory
from tests.helpers import order_body, post_order

pytestmark = pytest.mark.django_db

URL = "/api/orders/"
VALID = order_body(user_id="user44", item_ids=[1, 2, 3], total_amount=90.99)


def test_valid_order_is_stored_pending_and_returned_with_location(api):
    response = post_order(api, VALID)

    assert response.status_code == 201
    body = response.json()
    order = Order.objects.get(pk=body["order_id"])
    assert response["Location"] == f"/api/orders/{order.order_id}/"
    assert body["status"] == "PENDING" == order.status
    assert body["user_id"] == "user44"
    assert body["item_ids"] == [1, 2, 3]
    assert uuid.UUID(body["order_id"]).version == 4
    assert set(body) >= {"created_at", "updated_at", "started_at", "completed_at"}
    assert api.get(response["Location"]).json() == body


@pytest.mark.parametrize("amount", ["90.99", "0.10", "0", "9999999999.99", "0.01"])
def test_total_amount_round_trips_exactly(api, amount):
    response = api.post(
        URL, f'{{"user_id": "u", "item_ids": [1], "total_amount": {amount}}}', content_type="application/json"
    )

    assert response.status_code == 201
    # The JSON text itself carries the exact decimal: no 90.98999 from binary floats.
    assert json.loads(response.content, parse_float=Decimal)["total_amount"] == Decimal(amount)
    assert Order.objects.get().total_amount == Decimal(amount)


def test_total_amount_may_be_sent_as_a_string(api):
    response = post_order(api, {**VALID, "total_amount": "12.30"})

    assert response.status_code == 201
    assert Order.objects.get().total_amount == Decimal("12.30")


def test_negative_zero_is_stored_as_zero(api):
    response = api.post(URL, '{"user_id": "u", "item_ids": [1], "total_amount": -0.0}', content_type="application/json")

    assert response.status_code == 201
    assert response.content.count(b'"total_amount":0') == 1


def test_user_id_is_stored_exactly_as_sent(api):
    response = post_order(api, {**VALID, "user_id": "  padded  "})

    assert response.status_code == 201
    assert Order.objects.get().user_id == "  padded  "


def test_status_in_the_body_is_ignored(api):
    response = post_order(api, {**VALID, "status": "COMPLETED"})

    assert response.status_code == 201
    assert Order.objects.get().status == Order.Status.PENDING


def test_client_supplied_order_id_is_used(api):
    order_id = uuid.uuid4()

    response = post_order(api, {**VALID, "order_id": str(order_id)})

    assert response.status_code == 201
    assert response.json()["order_id"] == str(order_id)
    assert Order.objects.filter(pk=order_id).exists()


def test_duplicate_order_id_returns_409_and_keeps_the_original(api):
    original = OrderFactory(user_id="first", total_amount=Decimal("1.00"))

    response = post_order(api, {**VALID, "order_id": str(original.order_id)})

    assert response.status_code == 409
    assert response.json()["errors"][0]["attr"] == "order_id"
    original.refresh_from_db()
    assert (original.user_id, original.total_amount, Order.objects.count()) == ("first", Decimal("1.00"), 1)


BAD_FIELDS = [
    ("user_id", {"item_ids": [1], "total_amount": 1}),
    ("user_id", {**VALID, "user_id": ""}),
    ("user_id", {**VALID, "user_id": "x" * 129}),
    ("user_id", {**VALID, "user_id": "bad\nname"}),
    ("user_id", {**VALID, "user_id": "bad\x00name"}),
    ("user_id", {**VALID, "user_id": "tab\there"}),
    ("user_id", {**VALID, "user_id": 44}),
    ("user_id", {**VALID, "user_id": "lone\ud800surrogate"}),
    ("user_id", {**VALID, "user_id": None}),
    ("user_id", {**VALID, "user_id": ["a"]}),
    ("item_ids", {"user_id": "u", "total_amount": 1}),
    ("item_ids", {**VALID, "item_ids": []}),
    ("item_ids", {**VALID, "item_ids": list(range(1, 1002))}),
    ("item_ids", {**VALID, "item_ids": "1,2,3"}),
    ("item_ids", {**VALID, "item_ids": {"a": 1}}),
    ("item_ids.0", {**VALID, "item_ids": [0]}),
    ("item_ids.1", {**VALID, "item_ids": [1, -5]}),
    ("item_ids.0", {**VALID, "item_ids": [True]}),
    ("item_ids.0", {**VALID, "item_ids": ["1"]}),
    ("item_ids.0", {**VALID, "item_ids": [1.5]}),
    ("item_ids.0", {**VALID, "item_ids": [None]}),
    ("item_ids.0", {**VALID, "item_ids": [2**63]}),
    ("total_amount", {"user_id": "u", "item_ids": [1]}),
    ("total_amount", {**VALID, "total_amount": -0.01}),
    ("total_amount", {**VALID, "total_amount": "90.999"}),
    ("total_amount", {**VALID, "total_amount": "NaN"}),
    ("total_amount", {**VALID, "total_amount": "Infinity"}),
    ("total_amount", {**VALID, "total_amount": "-Infinity"}),
    ("total_amount", {**VALID, "total_amount": True}),
    ("total_amount", {**VALID, "total_amount": False}),
    ("total_amount", {**VALID, "total_amount": None}),
    ("total_amount", {**VALID, "total_amount": "abc"}),
    ("total_amount", {**VALID, "total_amount": [1]}),
    ("total_amount", {**VALID, "total_amount": 10**11}),
    ("total_amount", {**VALID, "total_amount": "1_000"}),
    ("total_amount", {**VALID, "total_amount": "\u0663"}),
    ("total_amount", {**VALID, "total_amount": " 5 "}),
    ("total_amount", {**VALID, "total_amount": "1e3"}),
    ("order_id", {**VALID, "order_id": "not-a-uuid"}),
    ("order_id", {**VALID, "order_id": 5}),
]


@pytest.mark.parametrize(("attr", "body"), BAD_FIELDS)
def test_bad_field_is_a_400_naming_the_field_and_stores_nothing(api, attr, body):
    response = post_order(api, body)

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert attr in [error["attr"] for error in errors]
    assert all(error["detail"] and error["code"] for error in errors)
    assert Order.objects.count() == 0


def test_too_many_decimal_places_in_a_json_number_is_refused(api):
    response = api.post(
        URL, '{"user_id": "u", "item_ids": [1], "total_amount": 90.990000000000001}', content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "total_amount"
    assert Order.objects.count() == 0


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_orders_cannot_be_rewritten_through_the_api(api, method):
    order = OrderFactory()

    for url in [URL, f"{URL}{order.order_id}/", f"{URL}{order.order_id}/status/"]:
        response = getattr(api, method)(url, json.dumps({"status": "COMPLETED"}), content_type="application/json")
        assert response.status_code == 405
        assert response.json()["errors"][0]["attr"] == "method"
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING
