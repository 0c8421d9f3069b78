"""Crashes, restarts, shutdowns and several processes on one database: no accepted order is lost or done twice."""

import signal

from tests.helpers import completed_ids, place_orders, wait_for


def stored_ids(database) -> set[str]:
    return {str(order_id) for (order_id,) in database.query("SELECT order_id FROM orders_order")}


def test_kill_9_while_orders_are_queued_and_in_flight_loses_nothing(processes, database):
    env = {
        "ORDER_PROCESSING_SECONDS": "1",
        "ORDER_WORKERS": "2",
        "ORDER_LEASE_SECONDS": "3",
        "ORDER_SWEEP_SECONDS": "0.2",
    }
    server = processes(**env)
    placed = place_orders(server, 30)
    wait_for(lambda: database.statuses()["COMPLETED"] >= 4, timeout=60)

    server.stop(signal.SIGKILL)
    at_crash = database.statuses()
    processes(**env)

    assert at_crash["PROCESSING"] >= 1 and at_crash["PENDING"] >= 1, at_crash
    wait_for(lambda: database.statuses() == {"COMPLETED": 30}, timeout=90)
    assert {str(order_id).replace("-", "") for order_id in placed} == stored_ids(database)


def test_two_processes_on_one_database_process_every_order_exactly_once(processes, database):
    fast = {"ORDER_PROCESSING_SECONDS": "0.02-0.05", "ORDER_SWEEP_SECONDS": "0.1"}
    server = processes(ORDER_WORKERS="1", **fast)
    worker = processes("worker", ORDER_WORKERS="4", **fast)

    place_orders(server, 200)
    wait_for(lambda: database.statuses() == {"COMPLETED": 200}, timeout=120)

    assert database.query("SELECT DISTINCT attempts FROM orders_order") == [(1,)]
    completions = wait_for(
        lambda: completed_ids(server) + completed_ids(worker), timeout=10, until=lambda ids: len(ids) >= 200
    )
    assert len(completions) == len(set(completions)) == 200
    assert completed_ids(worker)  # the work really was shared


def test_sigterm_hands_in_flight_orders_back_at_once_and_a_restart_finishes_them(processes, database):
    slow = {"ORDER_PROCESSING_SECONDS": "5", "ORDER_WORKERS": "2", "ORDER_SHUTDOWN_GRACE_SECONDS": "0.5"}
    server = processes(ORDER_LEASE_SECONDS="600", **slow)
    placed = place_orders(server, 10)
    wait_for(lambda: database.statuses()["PROCESSING"] >= 2, timeout=30)

    server.stop(signal.SIGTERM)

    assert server.process.returncode == 0
    at_stop = database.statuses()
    assert at_stop["PROCESSING"] == 0, at_stop  # handed back, not left for a 600 s lease to expire
    assert at_stop["PENDING"] == 10
    processes(ORDER_LEASE_SECONDS="600")
    wait_for(lambda: database.statuses() == {"COMPLETED": 10}, timeout=60)
    assert len(placed) == 10


def test_a_worker_only_process_stops_on_sigterm_without_losing_orders(processes, database):
    server = processes(ORDER_WORKER_AUTOSTART="0")
    place_orders(server, 6)
    worker = processes("worker", ORDER_PROCESSING_SECONDS="5", ORDER_WORKERS="2", ORDER_SHUTDOWN_GRACE_SECONDS="0.5")
    wait_for(lambda: database.statuses()["PROCESSING"] >= 2, timeout=30)

    worker.stop(signal.SIGTERM)

    assert worker.process.returncode == 0
    assert database.statuses() == {"PENDING": 6}
    processes("worker", ORDER_SWEEP_SECONDS="0.1")
    wait_for(lambda: database.statuses() == {"COMPLETED": 6}, timeout=60)
