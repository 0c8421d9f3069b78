"""The real server (make run's granian) under concurrent load, over real sockets on 127.0.0.1."""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from tests.helpers import place_order, place_orders, request, wait_for


def test_300_concurrent_posts_are_all_accepted_stored_once_and_exact(server):
    amounts = [Decimal(f"{n}.{n % 100:02d}") for n in range(300)]
    bodies = [{"user_id": f"user{n}", "item_ids": [n + 1], "total_amount": str(amounts[n])} for n in range(300)]

    with ThreadPoolExecutor(max_workers=300) as pool:
        results = list(pool.map(lambda body: request(server.url, "POST", "/api/orders/", body), bodies))

    assert [status for status, _ in results] == [201] * 300
    returned = {body["user_id"]: body for _, body in results}
    assert len({body["order_id"] for body in returned.values()}) == 300
    assert all(returned[f"user{n}"]["total_amount"] == amounts[n] for n in range(300))
    rows = server.database.query("SELECT order_id, user_id, CAST(total_amount AS TEXT) FROM orders_order")
    assert len(rows) == len({row[0] for row in rows}) == 300
    stored = {user_id: Decimal(amount).quantize(Decimal("0.01")) for _, user_id, amount in rows}
    assert stored == {f"user{n}": amounts[n] for n in range(300)}


def test_served_order_is_readable_through_every_endpoint(server):
    status, created = place_order(server.url)
    order_id = created["order_id"]

    assert status == 201
    assert request(server.url, "GET", f"/api/orders/{order_id}/")[1]["order_id"] == order_id
    assert request(server.url, "GET", f"/api/orders/{order_id}/status/")[0] == 200
    assert request(server.url, "GET", "/api/orders/")[1]["results"][0]["order_id"] == order_id


def test_served_orders_are_processed_by_the_servers_worker(server):
    _, created = place_order(server.url)

    status = wait_for(
        lambda: request(server.url, "GET", f"/api/orders/{created['order_id']}/status/")[1],
        until=lambda status: status["status"] == "COMPLETED",
    )
    assert status["attempts"] == 1


def test_one_process_holds_500_orders_of_1_s_async_work_in_flight_at_once(processes, database):
    intake = processes(ORDER_WORKER_AUTOSTART="0")
    place_orders(intake, 500)  # a backlog, as after a burst: the worker below finds it all at once
    worker = processes(WEB_CONCURRENCY="1", ORDER_PROCESSING_SECONDS="1")
    samples = []

    def sample_until_done():
        metrics = request(worker.url, "GET", "/api/metrics/")[1]
        samples.append(metrics["process"]["in_flight"])
        return metrics["orders_by_status"]["COMPLETED"] == 500

    wait_for(sample_until_done, timeout=60, interval=0.02)

    assert max(samples) >= 400, samples
    assert database.query("SELECT DISTINCT attempts FROM orders_order") == [(1,)]
