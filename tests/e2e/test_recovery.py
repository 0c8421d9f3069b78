"""Crashes, restarts, shutdowns and several processes on one database: no accepted order is lost or done twice."""

import signal
import time
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

import pytest

from tests.helpers import completed_ids, place_orders, wait_for, wait_for_statuses

# Attempts that outlast any test (tests.processors.logged runs the simulation) unless cut short: however slow the
# machine, none ends on its own before the test kills or stops its process.
NEVER_ENDS = {"ORDER_PROCESSING_SECONDS": "3600", "ORDER_PROCESSING_TIMEOUT_SECONDS": "7200"}
# 500 orders in flight at once.
IN_FLIGHT = {
    "ORDER_PROCESSOR": "tests.processors.logged",
    **NEVER_ENDS,
    "ORDER_SHUTDOWN_GRACE_SECONDS": "0.5",
}
# After the restart: attempts are quick, and claims of the dead process expire after 1 + 10 s.
RESTARTED = {
    "ORDER_PROCESSOR": "tests.processors.logged",
    "ORDER_PROCESSING_SECONDS": "0.1-0.3",
    "ORDER_PROCESSING_TIMEOUT_SECONDS": "1",
    "ORDER_SWEEP_SECONDS": "0.2",
}


@pytest.fixture
def attempt_log(tmp_path) -> dict:
    """Where tests.processors.logged writes each attempt's start and end; the servers get it in their environment."""
    return {"TEST_PROCESSOR_LOG": str(tmp_path / "attempts.log")}


def attempts_by_order(env: dict) -> dict[str, list[tuple]]:
    """Each order's attempts, in the order they started: (attempt, start, end or None, how it ended, pid)."""
    by_order: dict[str, list] = defaultdict(list)
    for line in Path(env["TEST_PROCESSOR_LOG"]).read_text().splitlines():
        event, order_id, attempt, moment, pid = line.split()
        if event == "start":
            by_order[order_id].append([int(attempt), float(moment), None, None, int(pid)])
        else:
            started = next(a for a in by_order[order_id] if a[4] == int(pid) and a[2] is None)
            started[2], started[3] = float(moment), event
    return by_order


def attempts_started(env: dict) -> int:
    """How many attempts the processor has begun running, by its log."""
    log = Path(env["TEST_PROCESSOR_LOG"])
    return sum(line.startswith("start ") for line in log.read_text().splitlines()) if log.exists() else 0


def assert_never_two_at_once(by_order: dict, died_at: float | None = None) -> None:
    """No order was worked on by two attempts at the same time; the attempts of a killed process ended at its death."""
    for order_id, attempts in by_order.items():
        spans = sorted((start, end if end is not None else died_at) for _, start, end, _, _ in attempts)
        for (_, end), (next_start, _) in pairwise(spans):
            assert end is not None and end <= next_start, f"{order_id} ran twice at once: {attempts}"


def test_kill_9_with_500_orders_in_flight_loses_nothing_and_runs_none_twice_at_once(processes, database, attempt_log):
    server = processes(**IN_FLIGHT, **attempt_log)
    placed = place_orders(server, 500)
    wait_for_statuses(database, {"PROCESSING": 500}, timeout=60)
    # Claimed is not yet started: wait until every attempt has begun, by the processor's log.
    wait_for(lambda: attempts_started(attempt_log), timeout=60, until=lambda started: started == 500)

    server.stop(signal.SIGKILL)
    died_at = time.time()
    processes(**RESTARTED, **attempt_log)

    wait_for_statuses(database, {"COMPLETED": 500}, timeout=120)
    stored = {order_id.replace("-", "") for (order_id,) in database.query("SELECT order_id FROM orders_order")}
    assert stored == {order_id.replace("-", "") for order_id in placed}
    # Every killed attempt counted; none was left PROCESSING.
    assert database.query("SELECT DISTINCT attempts FROM orders_order") == [(2,)]
    by_order = attempts_by_order(attempt_log)
    assert len(by_order) == 500
    assert all([a[3] for a in attempts] == [None, "end"] for attempts in by_order.values())
    assert_never_two_at_once(by_order, died_at)


def test_sigterm_with_500_orders_in_flight_hands_them_back_and_a_restart_finishes_each_once(
    processes, database, attempt_log
):
    server = processes(**IN_FLIGHT, **attempt_log)
    place_orders(server, 500)
    wait_for_statuses(database, {"PROCESSING": 500}, timeout=60)
    # Claimed is not yet started: wait until every attempt has begun, by the processor's log.
    wait_for(lambda: attempts_started(attempt_log), timeout=60, until=lambda started: started == 500)

    server.stop(signal.SIGTERM)

    assert server.process.returncode == 0
    assert database.statuses() == {"PENDING": 500}  # handed back at once, not left for a lease to expire
    processes(**RESTARTED, **attempt_log)
    wait_for_statuses(database, {"COMPLETED": 500}, timeout=120)
    assert database.query("SELECT DISTINCT attempts FROM orders_order") == [(1,)]  # the cut attempts did not count
    by_order = attempts_by_order(attempt_log)
    assert all([a[3] for a in attempts] == ["cancelled", "end"] for attempts in by_order.values())
    assert_never_two_at_once(by_order)


def test_kill_9_while_orders_are_queued_and_in_flight_loses_nothing(processes, database):
    env = {
        "ORDER_PROCESSING_SECONDS": "1",
        "ORDER_CONCURRENCY": "2",
        "ORDER_PROCESSING_TIMEOUT_SECONDS": "1.5",
        "ORDER_SWEEP_SECONDS": "0.2",
    }
    server = processes(**env)
    placed = place_orders(server, 30)
    wait_for(database.statuses, timeout=60, until=lambda statuses: statuses["COMPLETED"] >= 4)

    server.stop(signal.SIGKILL)
    at_crash = database.statuses()
    processes(**env)

    assert at_crash["PROCESSING"] >= 1 and at_crash["PENDING"] >= 1, at_crash
    wait_for_statuses(database, {"COMPLETED": 30}, timeout=90)
    stored = {order_id.replace("-", "") for (order_id,) in database.query("SELECT order_id FROM orders_order")}
    assert stored == {order_id.replace("-", "") for order_id in placed}


def test_two_processes_on_one_database_process_every_order_exactly_once(processes, database):
    fast = {"ORDER_PROCESSING_SECONDS": "0.02-0.05", "ORDER_SWEEP_SECONDS": "0.1"}
    server = processes(ORDER_CONCURRENCY="1", **fast)
    worker = processes("worker", ORDER_CONCURRENCY="4", **fast)

    place_orders(server, 200)
    wait_for_statuses(database, {"COMPLETED": 200}, timeout=120)

    assert database.query("SELECT DISTINCT attempts FROM orders_order") == [(1,)]
    completions = wait_for(
        lambda: completed_ids(server) + completed_ids(worker), timeout=10, until=lambda ids: len(ids) >= 200
    )
    assert len(completions) == len(set(completions)) == 200
    assert completed_ids(worker)  # the work really was shared


def test_a_worker_only_process_stops_on_sigterm_without_losing_orders(processes, database):
    server = processes(ORDER_WORKER_AUTOSTART="0")
    place_orders(server, 6)
    worker = processes("worker", **NEVER_ENDS, ORDER_SHUTDOWN_GRACE_SECONDS="0.5")
    wait_for(database.statuses, timeout=30, until=lambda statuses: statuses["PROCESSING"] == 6)

    worker.stop(signal.SIGTERM)

    assert worker.process.returncode == 0
    assert database.statuses() == {"PENDING": 6}
    processes("worker", ORDER_SWEEP_SECONDS="0.1")
    wait_for_statuses(database, {"COMPLETED": 6}, timeout=60)
