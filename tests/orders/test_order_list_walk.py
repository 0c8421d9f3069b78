"""Walking the whole order list of a real server on PostgreSQL while orders are created, processed and cancelled."""

import threading

import pytest

from tests.helpers import place_orders, request, wait_for

TIE = 7  # orders per created_at: a page of 10 ends inside a tie
PAGE_SIZE = 10


@pytest.fixture
def database(postgres_database):
    return postgres_database


def make_ties(database, first_tie: int = TIE) -> None:
    """Give TIE orders at a time one created_at (the newest first_tie orders too), as a group commit stamps a batch."""
    database.query(
        f"""
        UPDATE orders_order SET created_at = now() - interval '1 day' - ties.tie * interval '1 second'
        FROM (SELECT order_id, CASE WHEN n < {first_tie} THEN 0 ELSE 1 + (n - {first_tie}) / {TIE} END AS tie
              FROM (SELECT order_id, row_number() OVER (ORDER BY created_at DESC, order_id DESC) - 1 AS n
                    FROM orders_order) AS newest_first) AS ties
        WHERE orders_order.order_id = ties.order_id
        RETURNING 1
        """
    )


def get(server, path: str) -> dict:
    status, page = request(server.url, "GET", path)
    assert status == 200, page
    return page


def path_of(link: str | None) -> str | None:
    return None if link is None else link[link.index("/api/") :]


def test_a_walk_of_the_whole_list_while_orders_are_created_and_processed_lists_each_order_once(processes, database):
    server = processes(ORDER_PROCESSING_SECONDS="0-0.02")
    present = place_orders(server, 200)
    make_ties(database, first_tie=2 * PAGE_SIZE)  # the first page is one tie, as is the second
    stop = threading.Event()
    created: list[str] = []

    def churn():
        while not stop.is_set():
            created.extend(place_orders(server, 10, concurrency=10))

    churner = threading.Thread(target=churn)
    listed, path = [], f"/api/orders/?page_size={PAGE_SIZE}"
    try:
        page = get(server, path)
        churner.start()
        while page:
            listed += [order["order_id"] for order in page["results"]]
            before = len(created)
            wait_for(lambda before=before: len(created) > before, timeout=30)  # new orders between pages
            path = path_of(page["next"])
            page = path and get(server, path)
    finally:
        stop.set()
        churner.join(timeout=60)

    assert len(listed) == len(set(listed)), "an order was listed twice"
    assert present <= set(listed), f"{len(present - set(listed))} orders were skipped"
    assert database.statuses()["COMPLETED"] > 0  # and orders were processed meanwhile


def test_a_walk_by_status_while_orders_of_the_same_tie_are_cancelled_lists_each_pending_order_once(processes, database):
    server = processes(ORDER_WORKER_AUTOSTART="0")  # nobody processes: orders stay PENDING unless cancelled
    present = place_orders(server, 60)
    make_ties(database)
    cancelled, listed = set(), []
    path = f"/api/orders/?status=PENDING&page_size={PAGE_SIZE}"

    while path:
        page = get(server, path)
        listed += [order["order_id"] for order in page["results"]]
        if page["results"]:  # the last listed order's tie goes on to the next page, except at its end
            last = page["results"][-1]["order_id"]
            assert request(server.url, "POST", f"/api/orders/{last}/cancel/")[0] == 200
            cancelled.add(last)
        path = path_of(page["next"])

    assert len(listed) == len(set(listed)), "an order was listed twice"
    assert set(listed) == present, f"{len(present - set(listed))} orders left PENDING were skipped"
    assert len(cancelled) == len(present) // PAGE_SIZE
