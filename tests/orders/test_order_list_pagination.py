"""GET /api/orders/ pages by (created_at, order_id): orders sharing a created_at (one GroupCommit batch) included."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders.models import Order
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def tie(count: int, at=None, **fields) -> list[Order]:
    """count orders stamped with one created_at, as a GroupCommit batch stamps them."""
    at = at or timezone.now() - timedelta(hours=1)
    return [OrderFactory(created_at=at, **fields) for _ in range(count)]


def ids(page: dict) -> list[str]:
    return [result["order_id"] for result in page["results"]]


def walk(api, url: str, link: str = "next", between_pages=lambda page: None) -> list[dict]:
    """Every page from url on, following link."""
    pages = []
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.json()
        pages.append(response.json())
        between_pages(pages[-1])
        url = pages[-1][link]
    return pages


def listed(pages: list[dict]) -> list[str]:
    return [order_id for page in pages for order_id in ids(page)]


def test_a_walk_by_status_does_not_skip_an_order_when_another_of_its_tie_is_cancelled(api):
    orders = tie(6, status=Order.Status.PENDING)
    cancelled = []

    def cancel_the_last_listed(page):
        if page["results"]:
            cancelled.append(page["results"][-1]["order_id"])
            assert api.post(f"/api/orders/{cancelled[-1]}/cancel/").status_code == 200

    pages = walk(api, "/api/orders/?status=PENDING&page_size=2", between_pages=cancel_the_last_listed)

    assert sorted(listed(pages)) == sorted(str(order.order_id) for order in orders)  # each once, none skipped
    assert len(cancelled) == 3


def test_a_first_page_that_is_one_tie_is_not_repeated_on_page_two_after_a_new_order(api):
    orders = tie(3)
    first = api.get("/api/orders/?page_size=2").json()
    OrderFactory()  # newest of all

    second = api.get(first["next"]).json()

    assert sorted(ids(first) + ids(second)) == sorted(str(order.order_id) for order in orders)


FILTERS = {
    "": {},
    "status=PENDING&": {"status": Order.Status.PENDING},
    "user_id=alice&": {"user_id": "alice"},
    "status=PENDING&user_id=alice&": {"status": Order.Status.PENDING, "user_id": "alice"},
}


@pytest.mark.parametrize("query", FILTERS)
def test_pages_list_ties_newest_first_by_order_id_and_previous_walks_back(api, query):
    now = timezone.now()
    tie(3, now - timedelta(minutes=2), user_id="alice")
    tie(4, now - timedelta(minutes=1), user_id="alice")
    tie(1, now - timedelta(minutes=1), user_id="bob")
    tie(2, now - timedelta(minutes=1), user_id="alice", status=Order.Status.COMPLETED)
    wanted = Order.objects.filter(**FILTERS[query])
    newest_first = [str(order.order_id) for order in sorted(wanted, key=lambda o: (o.created_at, o.order_id))][::-1]

    pages = walk(api, f"/api/orders/?{query}page_size=3")
    back = walk(api, pages[-1]["previous"], link="previous")

    assert listed(pages) == newest_first
    assert pages[0]["previous"] is None and pages[-1]["next"] is None
    assert [ids(page) for page in back] == [ids(page) for page in pages[-2::-1]]
    assert back[-1]["previous"] is None


def test_an_empty_page_links_back_to_the_page_that_ends_with_its_cursors_order(api):
    orders = tie(4, status=Order.Status.PENDING)
    first = api.get("/api/orders/?status=PENDING&page_size=2").json()
    for order in orders:
        if str(order.order_id) not in ids(first):
            assert api.post(f"/api/orders/{order.order_id}/cancel/").status_code == 200

    empty = api.get(first["next"]).json()

    assert (empty["results"], empty["next"]) == ([], None)
    assert ids(api.get(empty["previous"]).json()) == ids(first)


def test_an_empty_page_walking_back_links_on_to_the_page_that_starts_with_its_cursors_order(api):
    tie(4, status=Order.Status.PENDING)
    first = api.get("/api/orders/?status=PENDING&page_size=2").json()
    second = api.get(first["next"]).json()
    for order_id in ids(first):
        assert api.post(f"/api/orders/{order_id}/cancel/").status_code == 200

    empty = api.get(second["previous"]).json()

    assert (empty["results"], empty["previous"]) == ([], None)
    assert ids(api.get(empty["next"]).json()) == ids(second)


@pytest.mark.skipif(connection.vendor != "mysql", reason="reads MySQL's EXPLAIN")
@pytest.mark.parametrize(
    ("query", "index"),
    [
        ("", "order_created_id_idx"),
        ("status=PENDING&", "order_status_created_id_idx"),
        ("user_id=user7&", "order_user_created_id_idx"),
    ],
)
def test_each_list_page_walks_its_index_without_sorting_on_mysql(transactional_db, api, query, index):
    # transactional_db: ANALYZE TABLE commits, so the orders are deleted after the test, not rolled back.
    now = timezone.now()
    orders = [
        Order(user_id=f"user{n % 50}", item_ids=[1], total_amount=1, status=Order.Status.values[n % 5])
        for n in range(5000)
    ]
    for n, order in enumerate(orders):
        order.created_at = now - timedelta(seconds=n // 2)  # ties of two
    Order.objects.bulk_create(orders, batch_size=1000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE TABLE orders_order")  # the statistics a table of this size has in production
        cursor.fetchall()
    first = api.get(f"/api/orders/?{query}page_size=50").json()
    second = api.get(first["next"]).json()

    for url in [f"/api/orders/?{query}page_size=50", first["next"], second["previous"]]:
        with CaptureQueriesContext(connection) as queries:
            assert api.get(url).status_code == 200
        (select,) = [captured["sql"] for captured in queries if captured["sql"].startswith("SELECT")]
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN {select}")
            plan = [dict(zip([column[0] for column in cursor.description], row, strict=True)) for row in cursor]
        assert [(row["key"], "filesort" in (row["Extra"] or "")) for row in plan] == [(index, False)], (url, plan)
