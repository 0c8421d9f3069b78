"""Celery mode for real: a real server (granian) and `celery worker` subprocesses on Redis, PostgreSQL and MariaDB."""

import signal
import subprocess
import sys

import pytest

from tests.helpers import ROOT, completed_ids, place_order, place_orders, request, wait_for


@pytest.fixture(params=["postgres_database", "mysql_database"])
def database(request):
    return request.getfixturevalue(request.param)


@pytest.fixture(params=["redis_broker"])
def celery_env(request):
    broker = request.getfixturevalue(request.param)
    return {"ORDER_QUEUE_BACKEND": "celery", **broker, "ORDER_SWEEP_SECONDS": "0.5"}


def start_celery(processes, *, args: tuple[str, ...] = (), **env):
    worker = processes("celery", args=args, **env)
    wait_for(lambda: " ready." in worker.output(), timeout=60)
    return worker


@pytest.mark.parametrize("celery_env", ["redis_broker", "rabbitmq_broker"], indirect=True)
def test_300_concurrent_orders_are_each_processed_once_and_metrics_are_exact(processes, database, celery_env):
    server = processes(**celery_env)
    workers = [start_celery(processes, **celery_env) for _ in range(2)]

    placed = place_orders(server, 300, concurrency=300)

    wait_for(lambda: database.statuses() == {"COMPLETED": 300}, timeout=120)
    assert database.query("SELECT DISTINCT attempts FROM orders_order") == [(1,)]
    completions = [order_id for worker in workers for order_id in completed_ids(worker)]
    assert sorted(completions) == sorted(placed)  # each exactly once, by one of the workers
    assert all(completed_ids(worker) for worker in workers)  # and the work really was shared
    metrics = request(server.url, "GET", "/api/metrics/")[1]
    assert metrics["orders_by_status"]["COMPLETED"] == metrics["totals"]["completed"] == 300
    assert metrics["processing_time_seconds"]["count"] == 300
    assert metrics["queue_depth"] == metrics["in_flight"] == 0
    assert rebuild(database) == "metrics_rebuild: 0 metric rows changed."


def test_kill_9_of_a_celery_worker_mid_drain_loses_nothing(processes, database, celery_env):
    env = {
        **celery_env,
        "ORDER_PROCESSING_SECONDS": "0.2",
        "ORDER_PROCESSING_TIMEOUT_SECONDS": "1",
        "ORDER_REQUEUE_SECONDS": "2",
    }
    server = processes(**env)
    worker = start_celery(processes, **env)
    placed = place_orders(server, 120)
    # Mid-drain: some done, some in a worker's hands (a worker between two orders holds none of them).
    wait_for(lambda: (now := database.statuses())["COMPLETED"] >= 10 and now["PROCESSING"] >= 1, timeout=60)

    worker.stop(signal.SIGKILL)
    at_crash = database.statuses()
    start_celery(processes, **env)

    assert at_crash["PROCESSING"] >= 1 and at_crash["PENDING"] >= 1, at_crash
    wait_for(lambda: database.statuses() == {"COMPLETED": 120}, timeout=120)
    assert {str(order_id) for (order_id,) in database.query("SELECT order_id FROM orders_order")} == placed
    assert rebuild(database) == "metrics_rebuild: 0 metric rows changed."


def test_with_the_broker_down_orders_are_still_accepted_and_readyz_says_why(processes, database, celery_env):
    ready = processes(**celery_env)
    no_broker = processes(**{**celery_env, "CELERY_BROKER_URL": "redis://127.0.0.1:9/0"})

    status, _ = place_order(no_broker.url)
    assert status == 201  # committed: the sweep sends it once the broker is back
    assert database.query("SELECT status FROM orders_order") == [("PENDING",)]
    assert "could not be queued" in no_broker.output()

    assert request(ready.url, "GET", "/readyz") == (200, {"status": "ready"})
    status, body = request(no_broker.url, "GET", "/readyz")
    assert status == 503
    assert body["status"] == "unavailable"
    assert set(body["problems"]) == {"queue"}
    assert body["problems"]["queue"].startswith("broker unreachable")


def rebuild(database) -> str:
    """Run metrics_rebuild against the test's database; on exact metrics it changes nothing."""
    env = {"DATABASE_URL": database.url, "PATH": ""}
    command = [sys.executable, "manage.py", "metrics_rebuild"]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout.strip()


def test_an_async_processor_runs_in_celery_with_every_outcome_and_its_result(processes, database, celery_env):
    env = {
        **celery_env,
        "ORDER_PROCESSOR": "tests.processors.by_user_id",
        "ORDER_PROCESSING_TIMEOUT_SECONDS": "0.5",
        "ORDER_MAX_ATTEMPTS": "2",
        "ORDER_RETRY_BACKOFF_SECONDS": "0.1",
    }
    server = processes(**env)
    start_celery(processes, **env)
    kinds = ["returns-a-result", "rejects", "retries-later", "hangs", "succeeds-on-attempt-2"]

    for user_id in kinds:
        body = {"user_id": user_id, "item_ids": [1, 2], "total_amount": "7.50"}
        assert request(server.url, "POST", "/api/orders/", body)[0] == 201

    wait_for(lambda: set(database.statuses()) <= {"COMPLETED", "FAILED"}, timeout=60)
    rows = database.query("SELECT user_id, status, attempts, failure_reason, result FROM orders_order")
    outcomes = {row[0]: (row[1], row[2], row[3], row[4]) for row in rows}
    assert outcomes["returns-a-result"] == ("COMPLETED", 1, "", {"charged": "7.50", "items": [1, 2], "attempt": 1})
    assert outcomes["rejects"] == ("FAILED", 1, "card declined", None)
    assert outcomes["retries-later"] == ("FAILED", 2, "gateway busy", None)
    assert outcomes["hangs"][:3] == ("FAILED", 2, "Timed out after 0.5 s (ORDER_PROCESSING_TIMEOUT_SECONDS).")
    assert outcomes["succeeds-on-attempt-2"] == ("COMPLETED", 2, "not yet", {"attempt": 2})
    assert rebuild(database) == "metrics_rebuild: 0 metric rows changed."


@pytest.mark.parametrize("database", ["postgres_database"], indirect=True)  # Django pools PostgreSQL's connections
def test_the_threads_pool_runs_an_async_processor_for_100_orders_at_once_on_10_connections(
    processes, database, redis_broker
):
    env = {"ORDER_QUEUE_BACKEND": "celery", **redis_broker, "ORDER_PROCESSING_SECONDS": "2"}
    server = processes(**env)
    # The README's recommendation: 100 threads sharing a pool of 10 connections. They are named, to be counted.
    named = f"{database.url}?application_name=celery_threads"
    worker = processes("celery-threads", DATABASE_URL=named, DATABASE_POOL_SIZE="10", **env)
    wait_for(lambda: " ready." in worker.output(), timeout=60)
    connections = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'celery_threads'"

    place_orders(server, 250)

    # One worker process, 100 threads: 2 s each, so at some moment at least 80 are in flight together.
    wait_for(lambda: database.statuses()["PROCESSING"], until=lambda in_flight: in_flight >= 80, timeout=60)
    while_busy = database.query(connections)[0][0]
    wait_for(lambda: database.statuses() == {"COMPLETED": 250}, timeout=60)
    assert database.query("SELECT DISTINCT attempts FROM orders_order") == [(1,)]
    assert while_busy <= 10  # the pool's, not one for each of the 100 threads


def test_a_failed_attempt_is_retried_by_celery_only_once_its_backoff_is_over(processes, database, celery_env, tmp_path):
    attempt_log = tmp_path / "attempts.log"
    env = {
        **celery_env,
        "ORDER_PROCESSOR": "tests.processors.logged",  # the simulation, writing when each attempt starts
        "ORDER_FAILURE_RATE": "0.5",
        "ORDER_RANDOM_SEED": "20261128",
        "ORDER_RETRY_BACKOFF_SECONDS": "1",
        "TEST_PROCESSOR_LOG": str(attempt_log),
    }
    server = processes(**env)
    start_celery(processes, **env)

    place_orders(server, 20)

    # Well before ORDER_REQUEUE_SECONDS (300 s): a sweep sent each retry once its backoff was over.
    wait_for(database.statuses, timeout=60, until=lambda statuses: set(statuses) <= {"COMPLETED", "FAILED"})
    starts: dict[str, dict[int, float]] = {}
    for line in attempt_log.read_text().splitlines():
        event, order_id, attempt, moment, _ = line.split()
        if event == "start":
            starts.setdefault(order_id, {})[int(attempt)] = float(moment)
    retried = {order_id: attempts for order_id, attempts in starts.items() if len(attempts) > 1}
    assert len(starts) == 20
    assert retried  # the seed fails some attempts
    for attempts in retried.values():
        for attempt in range(2, len(attempts) + 1):
            backoff = 1 * 2 ** (attempt - 2)  # 1 s after the first failure, 2 s after the second
            waited = attempts[attempt] - attempts[attempt - 1]
            # Not before the backoff is over, and soon after: the sweep runs every 0.5 s, the rest is a loaded machine.
            assert backoff <= waited < backoff + 10, attempts
    assert rebuild(database) == "metrics_rebuild: 0 metric rows changed."
