"""A plain-def processor that uses the ORM, many orders at once, on PostgreSQL: its connections are counted."""

import pytest

from tests.helpers import place_orders, wait_for

THREADS = 16
WEB_THREADS = 8
# Per server process (two): its request threads, the processor's threads, the claimer, the recorder and the sweeper.
BUDGET = 2 * (WEB_THREADS + THREADS + 3)


@pytest.fixture
def database(postgres_database):
    return postgres_database


def test_a_plain_def_using_the_orm_runs_many_orders_at_once_without_leaking_connections(processes, database):
    server = processes(
        ORDER_PROCESSOR="tests.processors.uses_the_orm",
        ORDER_THREADS=str(THREADS),
        WEB_CONCURRENCY="2",
        WEB_THREADS=str(WEB_THREADS),
    )
    name = database.url.rsplit("/", 1)[1]

    def connections() -> int:
        [(count,)] = database.query(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}'")
        return count - 1  # not the one asking

    counts = []
    for wave in range(1, 4):
        place_orders(server, 200)
        # Many at once: at some moment at least as many as one process has threads.
        wait_for(lambda: database.statuses()["PROCESSING"], until=lambda in_flight: in_flight >= THREADS, timeout=60)
        wait_for(lambda wave=wave: database.statuses() == {"COMPLETED": 200 * wave}, timeout=60)
        counts.append(connections())

    assert max(counts) <= BUDGET, counts  # 600 orders, and no more connections than threads that hold one
    seen = database.query("SELECT DISTINCT result->>'status_seen' FROM orders_order")
    assert seen == [("PROCESSING",)]  # the ORM, in the processor's thread, sees the order as claimed
    assert len(database.query("SELECT DISTINCT result->>'thread' FROM orders_order")) <= 2 * THREADS
