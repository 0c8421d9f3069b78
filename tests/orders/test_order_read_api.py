"""GET endpoints: one order, its status, and the paginated, filtered list."""

import uuid
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from orders.models import Order
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def test_detail_returns_the_whole_order(api):
    order = OrderFactory()

    response = api.get(f"/api/orders/{order.order_id}/")

    assert response.status_code == 200
    assert response.json()["order_id"] == str(order.order_id)
    assert response.json()["total_amount"] == 90.99


def test_status_returns_status_and_timestamps(api):
    order = OrderFactory(status=Order.Status.PROCESSING, attempts=1)

    body = api.get(f"/api/orders/{order.order_id}/status/").json()

    assert body["order_id"] == str(order.order_id)
    assert body["status"] == "PROCESSING"
    assert body["attempts"] == 1
    assert {"updated_at", "created_at", "started_at", "completed_at", "failure_reason"} <= set(body)


@pytest.mark.parametrize("path", ["", "status/"])
def test_timestamps_are_in_utc_whatever_time_zone_says(api, settings, path):
    settings.TIME_ZONE = "America/New_York"
    order = OrderFactory(status=Order.Status.PROCESSING, started_at=timezone.now())

    body = api.get(f"/api/orders/{order.order_id}/{path}").json()

    for name in ("created_at", "started_at", "updated_at"):
        assert body[name].endswith("Z")
        assert datetime.fromisoformat(body[name]) == getattr(order, name)


def test_status_accepts_an_uppercase_order_id(api):
    order = OrderFactory()

    response = api.get(f"/api/orders/{str(order.order_id).upper()}/status/")

    assert response.status_code == 200


@pytest.mark.parametrize("order_id", [str(uuid.uuid4()), "not-a-uuid", "1234", "%00"])
@pytest.mark.parametrize("suffix", ["", "status/"])
def test_unknown_or_malformed_id_is_a_json_404(api, order_id, suffix):
    response = api.get(f"/api/orders/{order_id}/{suffix}")

    assert response.status_code == 404
    assert response.json()["errors"][0]["attr"] == "order_id"


def make_orders(count: int, **fields) -> list[Order]:
    """Orders with distinct created_at, oldest first."""
    start = timezone.now() - timedelta(hours=1)
    return [OrderFactory(created_at=start + timedelta(seconds=n), **fields) for n in range(count)]


def test_list_is_newest_first(api):
    orders = make_orders(3)

    results = api.get("/api/orders/").json()["results"]

    assert [result["order_id"] for result in results] == [str(order.order_id) for order in reversed(orders)]


def test_list_pages_cover_every_order_once_in_both_directions(api):
    orders = make_orders(7)
    expected = [str(order.order_id) for order in reversed(orders)]

    seen, pages, url = [], [], "/api/orders/?page_size=3"
    while url:
        page = api.get(url).json()
        pages.append(page)
        seen += [result["order_id"] for result in page["results"]]
        url = page["next"]

    assert seen == expected
    assert [len(page["results"]) for page in pages] == [3, 3, 1]
    previous = api.get(pages[-1]["previous"]).json()
    assert [result["order_id"] for result in previous["results"]] == expected[3:6]


def test_list_pages_through_orders_created_in_the_same_microsecond(api):
    same_time = timezone.now()
    orders = [OrderFactory(created_at=same_time) for _ in range(5)]

    seen, url = [], "/api/orders/?page_size=2"
    while url:
        page = api.get(url).json()
        seen += [result["order_id"] for result in page["results"]]
        url = page["next"]

    assert sorted(seen) == sorted(str(order.order_id) for order in orders)


def test_list_filters_by_status_and_user(api):
    OrderFactory(user_id="alice", status=Order.Status.COMPLETED)
    wanted = OrderFactory(user_id="alice", status=Order.Status.PENDING)
    OrderFactory(user_id="bob", status=Order.Status.PENDING)

    results = api.get("/api/orders/?status=PENDING&user_id=alice").json()["results"]

    assert [result["order_id"] for result in results] == [str(wanted.order_id)]


A_CURSOR = "n1764300000000000." + "0" * 32  # a valid one: after 2025-11-28T03:20:00Z and order_id 0


@pytest.mark.parametrize(
    ("query", "attr"),
    [
        ("status=SHIPPED", "status"),
        ("status=pending", "status"),
        ("page_size=0", "page_size"),
        ("page_size=201", "page_size"),
        ("page_size=abc", "page_size"),
        ("page_size=", "page_size"),
        ("page_size=%205", "page_size"),
        ("page_size=%2B5", "page_size"),
        ("page_size=%D9%A5", "page_size"),  # ARABIC-INDIC DIGIT FIVE
        ("page_size=5.0", "page_size"),
        ("page_size=-5", "page_size"),
        ("page_size=1000", "page_size"),
        ("user_id=" + "x" * 129, "user_id"),
        ("user_id=", "user_id"),
        ("user_id=a%00b", "user_id"),
        ("user_id=alice%0A", "user_id"),
        ("cursor=", "cursor"),
        ("cursor=garbage", "cursor"),
        ("cursor=%25%25%25", "cursor"),
        ("cursor====", "cursor"),
        ("cursor=cD0yMDI2LTEzLTAxVDAwOjAwOjAwWg%3D%3D", "cursor"),  # DRF's format, "p=2026-13-01T00:00:00Z"
        ("cursor=cD05OTk5LTEyLTMxVDIzOjU5OjU5LTA1OjAw", "cursor"),  # DRF's, a timestamp out of the database's range
        ("cursor=n" + "9" * 17 + "." + "0" * 32, "cursor"),  # microseconds past the year 2286
        ("cursor=" + A_CURSOR.replace("n", "x"), "cursor"),
        ("cursor=" + A_CURSOR.replace("0" * 32, "A" * 32), "cursor"),
        ("cursor=" + A_CURSOR + "%0A", "cursor"),
        ("cursor=" + A_CURSOR[:-1], "cursor"),
        ("cursor=%20" + A_CURSOR, "cursor"),
    ],
)
def test_bad_query_parameter_is_a_400_naming_it(api, query, attr):
    OrderFactory()

    response = api.get(f"/api/orders/?{query}")

    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == attr


@pytest.mark.parametrize("page_size", ["1", "200", "007"])
def test_page_size_is_ascii_digits_from_1_to_200(api, page_size):
    make_orders(8)

    response = api.get(f"/api/orders/?page_size={page_size}")

    assert response.status_code == 200
    assert len(response.json()["results"]) == min(int(page_size), 8)


@pytest.mark.parametrize("cursor", ["n9999999999999999." + "f" * 32, "p0." + "0" * 32, "n0." + "0" * 32])
def test_every_cursor_the_schema_allows_is_a_position_even_at_the_ends_of_its_range(api, cursor):
    orders = make_orders(2)

    response = api.get(f"/api/orders/?cursor={cursor}")

    assert response.status_code == 200
    assert len(response.json()["results"]) == (0 if cursor.startswith("n0.") else len(orders))


def test_user_id_matches_exactly_whitespace_included(api):
    alice = OrderFactory(user_id="alice")
    spaced = OrderFactory(user_id=" alice")

    def listed(user_id: str) -> list[str]:
        response = api.get("/api/orders/", {"user_id": user_id})
        assert response.status_code == 200
        return [result["order_id"] for result in response.json()["results"]]

    assert listed("alice") == [str(alice.order_id)]
    assert listed(" alice") == [str(spaced.order_id)]
    assert listed("alice ") == []
    assert listed(" ") == []


def test_an_empty_status_means_every_status(api):
    OrderFactory()

    response = api.get("/api/orders/?status=")

    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


@pytest.mark.parametrize("size", [1, 30])
def test_list_query_count_does_not_grow_with_the_page(api, django_assert_num_queries, size):
    make_orders(size)

    with django_assert_num_queries(1):  # at either size: one query, however many orders the page holds
        response = api.get(f"/api/orders/?page_size={size}")

    assert len(response.json()["results"]) == size
